-- Accepting a held day: its flights' metadata, merged by the load's own upsert
-- (ingest/upsert_metadata). Ordered by flight, so concurrent writers lock in one order.
SELECT flight_id, airline, flight_number, departure_airport, arrival_airport, icao24, callsign
FROM held_metadata
WHERE partition_day = %(day)s
ORDER BY flight_id
