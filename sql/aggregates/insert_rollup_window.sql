INSERT INTO {rollup} SELECT * FROM {between}(%(start)s, %(end)s)
