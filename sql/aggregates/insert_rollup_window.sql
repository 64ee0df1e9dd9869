-- Recompute a rollup's window (Apache edition). Rows go in in time order (every rollup's first
-- column is its time bucket): an hour's minute rows then share a few heap blocks, where hash
-- order from the aggregation scattered them over thousands, and reads by time touch few.
INSERT INTO {rollup} SELECT * FROM {between}(%(start)s, %(end)s) ORDER BY 1
