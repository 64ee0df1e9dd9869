-- The days a refresh covers are current again (Apache edition).
DELETE FROM aggregate_stale_days WHERE day >= %(first_day)s AND day < %(end_day)s
