-- One page of the flights seen in [start, end), read from the per-minute aggregate (so the
-- window and the box are honoured to the minute), filtered by metadata and bounding box, in
-- (first_seen, flight_id) order after the previous page's last row. A NULL filter is unset.
-- first_seen, last_seen and points cover the flight's minutes in the window.
WITH seen AS (
    SELECT flight_id,
           min(first_time) AS first_seen,
           max(last_time) AS last_seen,
           sum(points)::bigint AS points,
           bool_or(
               %(min_latitude)s::float8 IS NULL
               OR (max_latitude >= %(min_latitude)s AND min_latitude <= %(max_latitude)s
                   AND CASE WHEN %(min_longitude)s::float8 <= %(max_longitude)s::float8
                            THEN max_longitude >= %(min_longitude)s
                                 AND min_longitude <= %(max_longitude)s
                            -- the box crosses the antimeridian
                            ELSE max_longitude >= %(min_longitude)s
                                 OR min_longitude <= %(max_longitude)s
                       END)
           ) AS in_box
    FROM flight_minutes
    WHERE bucket > %(start)s::timestamptz - INTERVAL '1 minute' AND bucket < %(end)s
      AND last_time >= %(start)s AND first_time < %(end)s
    GROUP BY flight_id
)
SELECT s.flight_id, m.airline, m.flight_number, m.departure_airport, m.arrival_airport,
       m.icao24, m.callsign, s.first_seen, s.last_seen, s.points
FROM seen AS s
LEFT JOIN flight_metadata AS m ON m.flight_id = s.flight_id
WHERE s.in_box
  AND (%(airline)s::text IS NULL OR m.airline = %(airline)s)
  AND (%(departure_airport)s::text IS NULL OR m.departure_airport = %(departure_airport)s)
  AND (%(arrival_airport)s::text IS NULL OR m.arrival_airport = %(arrival_airport)s)
  AND (s.first_seen, s.flight_id) > (%(after_time)s::timestamptz, %(after_id)s::varchar)
ORDER BY s.first_seen, s.flight_id
LIMIT %(limit)s
