-- Per-run staging for batches that may collide with stored rows: a temp table (no WAL, no
-- index) dropped with the transaction, so a killed run leaves nothing behind.
CREATE TEMP TABLE ingest_stage (LIKE flight_data INCLUDING DEFAULTS) ON COMMIT DROP
