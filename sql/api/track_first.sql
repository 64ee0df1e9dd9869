-- The first `limit` points of a source (points_*.sql), by time.
SELECT "timestamp", latitude, longitude, altitude, airspeed, track, vertical_rate, on_ground
FROM ({source}) AS s
ORDER BY "timestamp"
LIMIT %(limit)s
