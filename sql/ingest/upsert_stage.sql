-- A batch into the hypertable. Rows already stored with the same values are left alone (no
-- new row version, no WAL), so re-running a day writes only what changed.
INSERT INTO flight_data AS d
SELECT * FROM ingest_stage
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
