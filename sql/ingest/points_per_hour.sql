-- Points per hour in the window a partition touched: the shape of the day, for the UI.
SELECT time_bucket(INTERVAL '1 hour', "timestamp") AS hour, count(*) AS points
FROM flight_data
WHERE "timestamp" BETWEEN %s AND %s
GROUP BY 1
ORDER BY 1
