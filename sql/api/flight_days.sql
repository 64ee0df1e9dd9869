-- A flight's UTC days, oldest first: times, counts and extremes from the per-day aggregate.
-- The longitudes of the bounding box come from the day's raw points where they are kept:
-- of the two ways to span them, through Greenwich ([min, max]) or through the antimeridian
-- (longitudes counted 0..360 east), the narrower one, so a flight crossing the antimeridian
-- gets a box across it (min_longitude > max_longitude, as in a ListFlights request) rather
-- than one around the globe. Where raw points are gone, the aggregate's box stays.
SELECT (a.day AT TIME ZONE 'UTC')::date AS day, a.first_seen, a.last_seen, a.points,
       a.max_altitude, a.max_airspeed, a.min_latitude,
       coalesce(r.min_longitude, a.min_longitude) AS min_longitude,
       a.max_latitude,
       coalesce(r.max_longitude, a.max_longitude) AS max_longitude
FROM flight_days AS a
LEFT JOIN LATERAL (
    SELECT CASE WHEN max(e.east) - min(e.east) < max(e.longitude) - min(e.longitude)
                THEN CASE WHEN min(e.east) > 180 THEN min(e.east) - 360 ELSE min(e.east) END
                ELSE min(e.longitude) END AS min_longitude,
           CASE WHEN max(e.east) - min(e.east) < max(e.longitude) - min(e.longitude)
                THEN CASE WHEN max(e.east) > 180 THEN max(e.east) - 360 ELSE max(e.east) END
                ELSE max(e.longitude) END AS max_longitude
    FROM (SELECT d.longitude,
                 CASE WHEN d.longitude < 0 THEN d.longitude + 360 ELSE d.longitude END AS east
          FROM flight_data AS d
          WHERE d.flight_id = a.flight_id
            AND d."timestamp" >= a.day AND d."timestamp" < a.day + INTERVAL '1 day') AS e
) AS r ON true
WHERE a.flight_id = %(flight_id)s
ORDER BY a.day
