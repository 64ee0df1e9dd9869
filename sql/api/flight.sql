-- A flight's metadata (NULLs when it has none) and whether any report of it is stored.
SELECT q.flight_id, m.airline, m.flight_number, m.departure_airport, m.arrival_airport,
       m.icao24, m.callsign,
       EXISTS (SELECT 1 FROM flight_data d WHERE d.flight_id = q.flight_id) AS has_points
FROM (SELECT %(flight_id)s::varchar AS flight_id) AS q
LEFT JOIN flight_metadata m ON m.flight_id = q.flight_id
