-- A held load's metadata for one flight, published with its points if the day is accepted.
INSERT INTO held_metadata (partition_day, flight_id, airline, flight_number,
                           departure_airport, arrival_airport, icao24, callsign)
VALUES (%(day)s, %(flight_id)s, %(airline)s, %(flight_number)s, %(departure_airport)s,
        %(arrival_airport)s, %(icao24)s, %(callsign)s)
