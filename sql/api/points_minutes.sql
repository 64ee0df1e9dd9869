-- A flight's per-minute aggregate in [start, end) as points: each minute's first position at
-- its own time, with the minute's mean altitude and airspeed. The source of a track once its
-- raw reports have been dropped by retention (the aggregates are kept longer).
SELECT first_time AS "timestamp", first_latitude AS latitude, first_longitude AS longitude,
       round(avg_altitude)::int AS altitude, round(avg_airspeed)::int AS airspeed,
       NULL::real AS track, NULL::int AS vertical_rate, NULL::boolean AS on_ground,
       points AS reports
FROM flight_minutes
WHERE flight_id = %(flight_id)s
  AND bucket > %(start)s::timestamptz - INTERVAL '1 minute' AND bucket < %(end)s
  AND first_time >= %(start)s AND first_time < %(end)s
