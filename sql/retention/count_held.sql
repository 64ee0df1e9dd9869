-- Dry run of prune_held: the held loads (any state) of days past the raw retention.
SELECT count(*) FROM held_loads WHERE partition_day < %(before)s
