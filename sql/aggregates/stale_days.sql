-- Days with points written since their rollups were refreshed (Apache edition).
SELECT day FROM aggregate_stale_days
WHERE day >= coalesce(%(first_day)s::date, '-infinity'::date) AND day < %(end_day)s
ORDER BY day
