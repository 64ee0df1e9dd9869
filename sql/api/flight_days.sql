-- A flight's UTC days from the per-day aggregate, oldest first.
SELECT (day AT TIME ZONE 'UTC')::date AS day, first_seen, last_seen, points,
       max_altitude, max_airspeed, min_latitude, min_longitude, max_latitude, max_longitude
FROM flight_days
WHERE flight_id = %(flight_id)s
ORDER BY day
