-- The chunks of a hypertable or continuous aggregate entirely before a horizon, with what
-- they hold: their time range, size on disk and the planner's row estimate (-1: unknown).
-- All of it comes from the catalog, so listing costs the same however many rows they hold.
SELECT format('%%I.%%I', c.chunk_schema, c.chunk_name) AS chunk,
       c.range_start,
       c.range_end,
       pg_total_relation_size(old.chunk) AS bytes,
       cls.reltuples::bigint AS rows_estimate
FROM show_chunks(%(relation)s::regclass, older_than => %(horizon)s::timestamptz) AS old(chunk)
JOIN pg_class cls ON cls.oid = old.chunk
JOIN pg_namespace ns ON ns.oid = cls.relnamespace
JOIN timescaledb_information.chunks c
  ON c.chunk_schema = ns.nspname AND c.chunk_name = cls.relname
ORDER BY c.range_start
