-- At most `points` of a source's points (points_*.sql): all of them when there are that few,
-- else exactly `points` evenly spaced by rank with the first and the last included (point i
-- of n, counted from 0, is kept when floor(i * (points - 1) / (n - 1)) moves on from the
-- previous point's value). Each row also carries n and the stored reports the source's
-- points stand for, so GetFlightData needs this one statement whatever its max_points.
SELECT "timestamp", latitude, longitude, altitude, airspeed, track, vertical_rate, on_ground,
       n, reports_total
FROM (
    SELECT s.*,
           row_number() OVER (ORDER BY "timestamp") - 1 AS i,
           count(*) OVER () AS n,
           sum(reports) OVER () AS reports_total
    FROM ({source}) AS s
) AS ranked
WHERE n <= %(points)s::bigint
   OR i = 0
   OR (i * (%(points)s::bigint - 1)) / (n - 1) > ((i - 1) * (%(points)s::bigint - 1)) / (n - 1)
ORDER BY "timestamp"
