-- Where each aircraft was when the day began: its last stored point in
-- [day_start - gap, day_start), the flight and callsign of that point, and, for an aircraft
-- on the ground, when that flight's current ground run began (its first ground point after
-- its last airborne one) and when the flight began. The flight identifier starts the day
-- from these, so a flight continuing across midnight keeps its id.
WITH last_per_flight AS (
    SELECT flight_id, max("timestamp") AS last_time
    FROM flight_data
    WHERE "timestamp" >= %(window_start)s AND "timestamp" < %(day_start)s
    GROUP BY flight_id
), last_point AS (
    SELECT DISTINCT ON (m.icao24)
           m.icao24, f.flight_id, f.last_time, m.callsign, d.on_ground IS TRUE AS on_ground
    FROM last_per_flight AS f
    JOIN flight_metadata AS m ON m.flight_id = f.flight_id
    JOIN flight_data AS d ON d.flight_id = f.flight_id AND d."timestamp" = f.last_time
    WHERE m.icao24 IS NOT NULL
    ORDER BY m.icao24, f.last_time DESC, f.flight_id DESC
)
SELECT p.icao24, p.flight_id, p.last_time, p.callsign, p.on_ground,
       run.ground_since, run.first_time
FROM last_point AS p
LEFT JOIN LATERAL (
    SELECT (SELECT min(g."timestamp")
            FROM flight_data AS g
            WHERE g.flight_id = p.flight_id AND g."timestamp" <= p.last_time AND g.on_ground
              AND g."timestamp" > COALESCE(
                  (SELECT max(a."timestamp")
                   FROM flight_data AS a
                   WHERE a.flight_id = p.flight_id AND a."timestamp" < p.last_time
                     AND a.on_ground IS NOT TRUE),
                  '-infinity')) AS ground_since,
           (SELECT min(s."timestamp")
            FROM flight_data AS s
            WHERE s.flight_id = p.flight_id AND s."timestamp" <= p.last_time) AS first_time
) AS run ON p.on_ground
ORDER BY p.icao24
