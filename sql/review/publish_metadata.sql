-- Accepting a held day: its flights' metadata, merged as a load merges it (an empty field
-- never erases a known value). Ordered by flight, so concurrent writers lock in one order.
INSERT INTO flight_metadata AS m (flight_id, airline, flight_number, departure_airport,
                                  arrival_airport, icao24, callsign)
SELECT flight_id, airline, flight_number, departure_airport, arrival_airport, icao24, callsign
FROM held_metadata
WHERE partition_day = %(day)s
ORDER BY flight_id
ON CONFLICT (flight_id) DO UPDATE SET
    airline           = COALESCE(EXCLUDED.airline, m.airline),
    flight_number     = COALESCE(EXCLUDED.flight_number, m.flight_number),
    departure_airport = COALESCE(EXCLUDED.departure_airport, m.departure_airport),
    arrival_airport   = COALESCE(EXCLUDED.arrival_airport, m.arrival_airport),
    icao24            = COALESCE(EXCLUDED.icao24, m.icao24),
    callsign          = COALESCE(EXCLUDED.callsign, m.callsign),
    updated_at        = now()
WHERE (m.airline, m.flight_number, m.departure_airport, m.arrival_airport, m.icao24, m.callsign)
   IS DISTINCT FROM
      (COALESCE(EXCLUDED.airline, m.airline), COALESCE(EXCLUDED.flight_number, m.flight_number),
       COALESCE(EXCLUDED.departure_airport, m.departure_airport),
       COALESCE(EXCLUDED.arrival_airport, m.arrival_airport),
       COALESCE(EXCLUDED.icao24, m.icao24), COALESCE(EXCLUDED.callsign, m.callsign))
