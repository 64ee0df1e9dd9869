-- A flight's stored reports in [start, end): the source of its track while raw data is kept.
SELECT "timestamp", latitude, longitude, altitude, airspeed, track, vertical_rate, on_ground,
       1 AS reports
FROM flight_data
WHERE flight_id = %(flight_id)s AND "timestamp" >= %(start)s AND "timestamp" < %(end)s
