-- The instant below which the cleaner dropped raw flight_data (NULL: nothing dropped yet).
SELECT max(raw_horizon) FROM retention_runs
