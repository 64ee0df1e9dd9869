-- One page of the flights with a report in [start, end) (and, with a box, a report inside the
-- box), filtered by metadata, in (first_seen, flight_id) order after the previous page's last
-- row. A NULL filter is unset; min_longitude > max_longitude is a box across the antimeridian.
-- first_seen, last_seen and points describe the flight's reports in the window, exactly:
-- the window is cut (pipelines/warehouse/flight_reads.py) into whole UTC days, read from
-- flight_days; whole hours beside them, from flight_hours; whole minutes at its edges, from
-- flight_minutes; and the sub-minute edges, from raw points. Each report is counted in
-- exactly one part.
--
-- A box is decided exactly too. Each part has a longitude box, west to east (the stored
-- smallest box of an aggregate, migration 010, which may cross the antimeridian; a raw
-- report's own longitude); either box may cross, so the tests below are written for arcs,
-- with comparisons only. A part whose box lies inside the query box has all its reports
-- inside; one whose box only touches it proves nothing, so such a flight is listed when one
-- of its raw reports in the window is inside the box (a lookup by the primary key). Where raw
-- points were dropped by retention (below the raw horizon) only the aggregates remain: there
-- a touching box lists the flight (to the precision of the part).
WITH parts AS (
    SELECT flight_id, first_seen, last_seen, points,
           min_latitude, max_latitude, west_longitude, east_longitude, day AS part_start
    FROM flight_days
    WHERE day >= %(days_start)s AND day < %(days_end)s
    UNION ALL
    SELECT flight_id, first_seen, last_seen, points,
           min_latitude, max_latitude, west_longitude, east_longitude, hour
    FROM flight_hours
    WHERE (hour >= %(hours_start)s AND hour < %(hours_end)s)
       OR (hour >= %(late_hours_start)s AND hour < %(late_hours_end)s)
    UNION ALL
    SELECT flight_id, first_time, last_time, points,
           min_latitude, max_latitude, west_longitude, east_longitude, bucket
    FROM flight_minutes
    WHERE (bucket >= %(minutes_start)s AND bucket < %(minutes_end)s)
       OR (bucket >= %(late_minutes_start)s AND bucket < %(late_minutes_end)s)
    UNION ALL
    SELECT flight_id, "timestamp", "timestamp", 1,
           latitude, latitude, longitude, longitude, "timestamp"
    FROM flight_data
    WHERE ("timestamp" >= %(start)s AND "timestamp" < %(raw_end)s)
       OR ("timestamp" >= %(late_raw_start)s AND "timestamp" < %(end)s)
), horizon AS (
    SELECT coalesce(max(raw_horizon), '-infinity') AS raw_horizon FROM retention_runs
), boxed AS (
    -- Migration 012: whether the part lies inside the query box, whether it touches it.
    SELECT p.*,
           box_holds(p.min_latitude, p.max_latitude, p.west_longitude, p.east_longitude,
                     %(min_latitude)s::float8, %(max_latitude)s::float8,
                     %(min_longitude)s::float8, %(max_longitude)s::float8) AS inside,
           box_touches(p.min_latitude, p.max_latitude, p.west_longitude, p.east_longitude,
                       %(min_latitude)s::float8, %(max_latitude)s::float8,
                       %(min_longitude)s::float8, %(max_longitude)s::float8) AS touches
    FROM parts AS p
), seen AS (
    SELECT b.flight_id,
           min(b.first_seen) AS first_seen,
           max(b.last_seen) AS last_seen,
           sum(b.points)::bigint AS points,
           bool_or(b.inside) AS inside,
           bool_or(b.touches AND b.part_start < h.raw_horizon) AS touches_below_horizon,
           bool_or(b.touches) AS touches
    FROM boxed AS b CROSS JOIN horizon AS h
    GROUP BY b.flight_id
)
SELECT s.flight_id, m.airline, m.flight_number, m.departure_airport, m.arrival_airport,
       m.icao24, m.callsign, s.first_seen, s.last_seen, s.points
FROM seen AS s
LEFT JOIN flight_metadata AS m ON m.flight_id = s.flight_id
-- Per flight, only for one whose box touches without lying inside: a nested lookup that
-- stops at the first report inside (a join here could be planned as a scan of the window).
LEFT JOIN LATERAL (
    SELECT true AS inside
    FROM flight_data AS d
    WHERE s.touches AND NOT s.inside AND NOT s.touches_below_horizon
      AND d.flight_id = s.flight_id
      AND d."timestamp" >= %(start)s AND d."timestamp" < %(end)s
      -- A report is a box of one point.
      AND box_holds(d.latitude, d.latitude, d.longitude, d.longitude,
                    %(min_latitude)s::float8, %(max_latitude)s::float8,
                    %(min_longitude)s::float8, %(max_longitude)s::float8)
    LIMIT 1
) AS raw ON true
WHERE (s.inside OR s.touches_below_horizon OR raw.inside)
  AND (%(airline)s::text IS NULL OR m.airline = %(airline)s)
  AND (%(departure_airport)s::text IS NULL OR m.departure_airport = %(departure_airport)s)
  AND (%(arrival_airport)s::text IS NULL OR m.arrival_airport = %(arrival_airport)s)
  AND (s.first_seen, s.flight_id) > (%(after_time)s::timestamptz, %(after_id)s::varchar)
ORDER BY s.first_seen, s.flight_id
LIMIT %(limit)s
