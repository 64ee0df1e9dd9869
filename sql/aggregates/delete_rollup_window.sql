DELETE FROM {rollup} WHERE {time_column} >= %(start)s AND {time_column} < %(end)s
