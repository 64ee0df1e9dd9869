-- The constraint that makes (flight_id, timestamp) unique in flight_data, as the catalog
-- holds it (no row: the key is gone, e.g. a restore without it). The database enforces it on
-- every write, so proving it is in place proves no key is stored twice, at the cost of a
-- catalog lookup instead of a scan of the day.
SELECT c.conname::text
FROM pg_constraint AS c
WHERE c.conrelid = 'flight_data'::regclass
  AND c.contype IN ('p', 'u')
  AND c.convalidated
  AND (SELECT array_agg(a.attname::text ORDER BY a.attname)
       FROM pg_attribute AS a
       WHERE a.attrelid = c.conrelid AND a.attnum = ANY (c.conkey)) = ARRAY['flight_id', 'timestamp']
