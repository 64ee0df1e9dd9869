-- Accepting a held day: its points into the hypertable, as its load would have written them
-- (a key stored by another day is updated, unchanged rows are left alone).
INSERT INTO flight_data AS d (flight_id, "timestamp", latitude, longitude, altitude, airspeed,
                              track, vertical_rate, on_ground, squawk)
SELECT flight_id, "timestamp", latitude, longitude, altitude, airspeed, track, vertical_rate,
       on_ground, squawk
FROM held_points
WHERE partition_day = %(day)s
ON CONFLICT (flight_id, "timestamp") DO UPDATE SET
    latitude      = EXCLUDED.latitude,
    longitude     = EXCLUDED.longitude,
    altitude      = EXCLUDED.altitude,
    airspeed      = EXCLUDED.airspeed,
    track         = EXCLUDED.track,
    vertical_rate = EXCLUDED.vertical_rate,
    on_ground     = EXCLUDED.on_ground,
    squawk        = EXCLUDED.squawk
WHERE (d.latitude, d.longitude, d.altitude, d.airspeed, d.track, d.vertical_rate,
       d.on_ground, d.squawk)
   IS DISTINCT FROM
      (EXCLUDED.latitude, EXCLUDED.longitude, EXCLUDED.altitude, EXCLUDED.airspeed,
       EXCLUDED.track, EXCLUDED.vertical_rate, EXCLUDED.on_ground, EXCLUDED.squawk)
