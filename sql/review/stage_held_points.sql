-- Accepting a held day: its points into the load's staging table, to be published by the
-- same upsert a load uses (ingest/upsert_stage), so an accepted day is written exactly as a
-- passing load would have written it.
INSERT INTO ingest_stage (flight_id, "timestamp", latitude, longitude, altitude, airspeed,
                          track, vertical_rate, on_ground, squawk)
SELECT flight_id, "timestamp", latitude, longitude, altitude, airspeed, track, vertical_rate,
       on_ground, squawk
FROM held_points
WHERE partition_day = %(day)s
