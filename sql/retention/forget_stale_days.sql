-- Days below the raw horizon can never be refreshed again (Apache edition).
DELETE FROM aggregate_stale_days WHERE day < %(before)s
