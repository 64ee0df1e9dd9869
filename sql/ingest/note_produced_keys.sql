-- The keys of the batch just upserted, for `forget_unproduced`.
INSERT INTO produced_keys SELECT flight_id, "timestamp" FROM ingest_stage
