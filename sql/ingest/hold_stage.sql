-- One replayed batch of a held load into held_points. The load wrote the batches in this
-- order into flight_data, so the last write of a key wins here as it did there.
INSERT INTO held_points AS h
SELECT %(day)s::date, s.* FROM ingest_stage AS s
ON CONFLICT (partition_day, flight_id, "timestamp") DO UPDATE SET
    latitude      = EXCLUDED.latitude,
    longitude     = EXCLUDED.longitude,
    altitude      = EXCLUDED.altitude,
    airspeed      = EXCLUDED.airspeed,
    track         = EXCLUDED.track,
    vertical_rate = EXCLUDED.vertical_rate,
    on_ground     = EXCLUDED.on_ground,
    squawk        = EXCLUDED.squawk
