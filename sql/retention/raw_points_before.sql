-- Whether any raw point older than a horizon remains (chunk exclusion keeps this cheap).
SELECT EXISTS (SELECT 1 FROM flight_data WHERE "timestamp" < %(horizon)s)
