-- The time range of every stored raw point (NULLs when flight_data is empty): what aggregates
-- created again by a migration are refreshed over, once.
SELECT min("timestamp"), max("timestamp") FROM flight_data
