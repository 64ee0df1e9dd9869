-- How many reports of a flight are stored in [start, end).
SELECT count(*) FROM flight_data
WHERE flight_id = %(flight_id)s AND "timestamp" >= %(start)s AND "timestamp" < %(end)s
