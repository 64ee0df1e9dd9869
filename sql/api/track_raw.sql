-- A flight's stored reports in [start, end), the first `limit` of them by time.
SELECT "timestamp", latitude, longitude, altitude, airspeed, track, vertical_rate, on_ground
FROM flight_data
WHERE flight_id = %(flight_id)s AND "timestamp" >= %(start)s AND "timestamp" < %(end)s
ORDER BY "timestamp"
LIMIT %(limit)s
