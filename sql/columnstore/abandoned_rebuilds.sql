-- What an interrupted REINDEX CONCURRENTLY leaves on a chunk: an invalid copy of an index
-- named with PostgreSQL's suffix `_ccnew` (the build stopped) or `_ccold` (the swap was done,
-- the old index not yet dropped), which writes would keep maintaining for nothing.
SELECT n.nspname AS index_schema, c.relname AS index_name
FROM pg_index AS i
JOIN pg_class AS c ON c.oid = i.indexrelid
JOIN pg_namespace AS n ON n.oid = c.relnamespace
WHERE i.indrelid = %(chunk)s::regclass
  AND NOT i.indisvalid
  AND c.relname ~ '_cc(new|old)[0-9]*$'
