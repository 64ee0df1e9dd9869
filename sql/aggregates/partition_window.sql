-- The time range the points of one loaded partition span (no row: never loaded).
SELECT min_timestamp, max_timestamp FROM partition_loads WHERE partition_day = %(day)s
