-- The first `limit` points of a source (points_*.sql), by time (n and reports_total are
-- left unknown: counting them would read past the limit).
SELECT "timestamp", latitude, longitude, altitude, airspeed, track, vertical_rate, on_ground,
       NULL::bigint AS n, NULL::bigint AS reports_total
FROM ({source}) AS s
ORDER BY "timestamp"
LIMIT %(limit)s
