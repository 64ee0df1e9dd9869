-- The installed TimescaleDB version: which refresh arguments the server accepts.
SELECT extversion FROM pg_extension WHERE extname = 'timescaledb'
