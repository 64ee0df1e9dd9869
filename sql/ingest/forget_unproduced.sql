-- A re-run replaces its day's OpenSky points: a point of an OpenSky flight (its metadata
-- names an aircraft) inside the day that this run did not produce was identified under
-- another flight id before (the day before arrived since, or the rule changed). Without
-- this, the point would stay stored under both ids. Returns the flights that lost points.
WITH gone AS (
    DELETE FROM flight_data AS d
    USING flight_metadata AS m
    WHERE m.flight_id = d.flight_id AND m.icao24 IS NOT NULL
      AND d."timestamp" >= %(day_start)s AND d."timestamp" < %(day_end)s
      AND NOT EXISTS (SELECT 1 FROM produced_keys AS k
                      WHERE k.flight_id = d.flight_id AND k."timestamp" = d."timestamp")
    RETURNING d.flight_id
)
SELECT DISTINCT flight_id FROM gone
