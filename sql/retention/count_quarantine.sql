SELECT count(*) FROM quarantine WHERE partition_day < %(before)s
