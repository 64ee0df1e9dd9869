-- Exactly `points` of a flight's reports in [start, end) (all when there are fewer), evenly
-- spaced by rank with the first and the last included: report i (of n, from 0) is kept when
-- floor(i * (points - 1) / (n - 1)) moves on from the previous report's value.
SELECT "timestamp", latitude, longitude, altitude, airspeed, track, vertical_rate, on_ground
FROM (
    SELECT *,
           row_number() OVER (ORDER BY "timestamp") - 1 AS i,
           count(*) OVER () AS n
    FROM flight_data
    WHERE flight_id = %(flight_id)s AND "timestamp" >= %(start)s AND "timestamp" < %(end)s
) AS ranked
WHERE n <= %(points)s::bigint
   OR i = 0
   OR (i * (%(points)s::bigint - 1)) / (n - 1) > ((i - 1) * (%(points)s::bigint - 1)) / (n - 1)
ORDER BY "timestamp"
