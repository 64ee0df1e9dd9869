-- Chunks of flight_data entirely before a horizon, not compressed yet and not about to be
-- dropped (ending after the raw horizon), with their size before compression (the cleaner
-- reports it). Catalog only: no row is read.
SELECT format('%%I.%%I', c.chunk_schema, c.chunk_name) AS chunk,
       c.range_start,
       c.range_end,
       pg_total_relation_size(format('%%I.%%I', c.chunk_schema, c.chunk_name)::regclass) AS bytes
FROM timescaledb_information.chunks AS c
WHERE c.hypertable_schema = current_schema()
  AND c.hypertable_name = 'flight_data'
  AND c.range_end <= %(before)s
  AND c.range_end > %(after)s
  AND NOT c.is_compressed
ORDER BY c.range_start
