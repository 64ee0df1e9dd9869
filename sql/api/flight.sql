-- A flight's metadata (NULLs when it has none).
SELECT q.flight_id, m.airline, m.flight_number, m.departure_airport, m.arrival_airport,
       m.icao24, m.callsign
FROM (SELECT %(flight_id)s::varchar AS flight_id) AS q
LEFT JOIN flight_metadata m ON m.flight_id = q.flight_id
