-- Apache edition: chunks of flight_data entirely before a horizon and not about to be dropped
-- (ending after the raw horizon) whose indexes were never rebuilt compact, or have grown by
-- more than `growth` (a fraction) since: a late drop adds a little, a rewrite of the day
-- doubles them. With the chunk's total size before; catalog only, no row is read.
SELECT q.chunk,
       c.range_start,
       c.range_end,
       pg_total_relation_size(q.chunk::regclass) AS bytes
FROM timescaledb_information.chunks AS c
CROSS JOIN LATERAL (SELECT format('%%I.%%I', c.chunk_schema, c.chunk_name) AS chunk) AS q
LEFT JOIN compacted_chunks AS k ON k.chunk = q.chunk
WHERE c.hypertable_schema = current_schema()
  AND c.hypertable_name = 'flight_data'
  AND c.range_end <= %(before)s
  AND c.range_end > %(after)s
  AND (k.chunk IS NULL
       OR pg_indexes_size(q.chunk::regclass) > k.index_bytes * (1 + %(growth)s::float8))
ORDER BY c.range_start
