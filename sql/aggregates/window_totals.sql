-- Points in a window as raw rows and as the per-minute aggregate counts them.
SELECT (SELECT count(*) FROM flight_data
        WHERE "timestamp" >= %(start)s AND "timestamp" < %(end)s) AS raw_points,
       (SELECT coalesce(sum(points), 0)::bigint FROM flight_minutes
        WHERE bucket >= %(start)s AND bucket < %(end)s) AS minute_points,
       (SELECT count(*) FROM flight_minutes
        WHERE bucket >= %(start)s AND bucket < %(end)s) AS minute_rows
