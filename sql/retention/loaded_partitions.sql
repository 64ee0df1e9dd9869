-- Partitions the ingest loaded, before a day, and when (for pruning their landing folders).
SELECT partition_day, loaded_at FROM partition_loads WHERE partition_day < %(before)s
ORDER BY partition_day
