-- A flight's UTC days, oldest first, from the per-day aggregate. The box's longitudes are the
-- day's stored smallest box (migration 010): a flight crossing the antimeridian gets a box
-- across it (min_longitude > max_longitude, as in a ListFlights request) rather than one
-- around the globe.
SELECT (day AT TIME ZONE 'UTC')::date AS day, first_seen, last_seen, points,
       max_altitude, max_airspeed, min_latitude, west_longitude AS min_longitude,
       max_latitude, east_longitude AS max_longitude
FROM flight_days
WHERE flight_id = %(flight_id)s
ORDER BY day
