DELETE FROM quarantine WHERE partition_day < %(before)s
