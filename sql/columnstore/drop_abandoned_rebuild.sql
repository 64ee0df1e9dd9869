-- An invalid index left by an interrupted rebuild (columnstore/abandoned_rebuilds.sql).
DROP INDEX CONCURRENTLY IF EXISTS {index}
