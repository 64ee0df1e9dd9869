-- Aircraft positions stored under more than one flight in the window a partition touched:
-- OpenSky flights are cut from one aircraft's reports, so an (aircraft, instant) belongs to
-- exactly one flight. The primary key cannot see this (the flight ids differ); a day
-- identified from a state that changed afterwards, and not re-keyed, would show here.
SELECT count(*) FROM (
    SELECT 1
    FROM flight_data d
    JOIN flight_metadata m ON m.flight_id = d.flight_id
    JOIN partition_loads l ON d."timestamp" BETWEEN l.min_timestamp AND l.max_timestamp
    WHERE l.partition_day = %(day)s AND m.icao24 IS NOT NULL
    GROUP BY m.icao24, d."timestamp"
    HAVING count(*) > 1
) AS repeated
