-- Compressed chunks of flight_data that overlap a window a load wrote into: an upsert there
-- decompressed the segments it touched, leaving the chunk partially compressed.
SELECT format('%%I.%%I', c.chunk_schema, c.chunk_name) AS chunk
FROM timescaledb_information.chunks AS c
WHERE c.hypertable_schema = current_schema()
  AND c.hypertable_name = 'flight_data'
  AND c.range_end > %(start)s
  AND c.range_start < %(end)s
  AND c.is_compressed
ORDER BY c.range_start
