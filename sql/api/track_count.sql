-- How many points a source (points_*.sql) has, and how many stored reports they stand for.
SELECT count(*) AS points, coalesce(sum(reports), 0)::bigint AS reports
FROM ({source}) AS s
