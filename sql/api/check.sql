-- Reads nothing, but fails unless the API's role may read the tables it serves.
SELECT 1 FROM flight_data CROSS JOIN flight_metadata LIMIT 0
