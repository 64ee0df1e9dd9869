-- ListFlights over exactly one whole UTC day or hour (the bucket of {spans}: flight_days or
-- flight_hours, its time column {bucket}, its length `span`): what sql/api/list_flights.sql
-- answers for such a window, without reading every flight of the bucket. Each flight has one
-- row for the bucket, its first_seen, last_seen and points there exactly, so nothing needs
-- grouping: the page walks the (bucket, first_seen, flight_id) index (flight_days_pages_idx,
-- migration 012; flight_hours_pages_idx, 014) in page order after the previous page's last
-- row and stops once it holds `limit` flights. The box is decided as there: the bucket's box
-- inside the query box lists the flight; a box that only touches it asks the flight's minutes
-- of the bucket, then its raw reports, or, below the raw horizon where only aggregates remain
-- (the horizon is a midnight: a bucket lies wholly above or below it), lists it.
--
-- Minutes first: a flight's raw reports of a day lie scattered over the day's heap (drops
-- arrive in time order), one block each, while its minute rows are a few. A minute whose box
-- lies inside the query box holds a report inside it; otherwise only the minutes whose box
-- touches it can, and only their raw reports are read (by the primary key, a minute each,
-- stopping at the first inside).
SELECT d.flight_id, m.airline, m.flight_number, m.departure_airport, m.arrival_airport,
       m.icao24, m.callsign, d.first_seen, d.last_seen, d.points::bigint
FROM {spans} AS d
LEFT JOIN flight_metadata AS m ON m.flight_id = d.flight_id
CROSS JOIN LATERAL (
    SELECT box_holds(d.min_latitude, d.max_latitude, d.west_longitude, d.east_longitude,
                     %(min_latitude)s::float8, %(max_latitude)s::float8,
                     %(min_longitude)s::float8, %(max_longitude)s::float8) AS inside,
           box_touches(d.min_latitude, d.max_latitude, d.west_longitude, d.east_longitude,
                       %(min_latitude)s::float8, %(max_latitude)s::float8,
                       %(min_longitude)s::float8, %(max_longitude)s::float8) AS touches
) AS b
LEFT JOIN LATERAL (
    SELECT true AS inside
    FROM flight_minutes AS fm
    WHERE b.touches AND NOT b.inside
      AND fm.flight_id = d.flight_id
      AND fm.bucket >= %(bucket_start)s AND fm.bucket < %(bucket_start)s + %(span)s::interval
      AND box_holds(fm.min_latitude, fm.max_latitude, fm.west_longitude, fm.east_longitude,
                    %(min_latitude)s::float8, %(max_latitude)s::float8,
                    %(min_longitude)s::float8, %(max_longitude)s::float8)
    LIMIT 1
) AS minute ON true
LEFT JOIN LATERAL (
    SELECT true AS inside
    FROM flight_minutes AS fm
    JOIN flight_data AS r
      ON r.flight_id = fm.flight_id
     AND r."timestamp" >= fm.bucket AND r."timestamp" < fm.bucket + INTERVAL '1 minute'
    WHERE b.touches AND NOT b.inside AND minute.inside IS NULL
      AND fm.flight_id = d.flight_id
      AND fm.bucket >= %(bucket_start)s AND fm.bucket < %(bucket_start)s + %(span)s::interval
      AND box_touches(fm.min_latitude, fm.max_latitude, fm.west_longitude, fm.east_longitude,
                      %(min_latitude)s::float8, %(max_latitude)s::float8,
                      %(min_longitude)s::float8, %(max_longitude)s::float8)
      -- A report is a box of one point.
      AND box_holds(r.latitude, r.latitude, r.longitude, r.longitude,
                    %(min_latitude)s::float8, %(max_latitude)s::float8,
                    %(min_longitude)s::float8, %(max_longitude)s::float8)
    LIMIT 1
) AS raw ON true
WHERE d.{bucket} = %(bucket_start)s
  AND (d.first_seen, d.flight_id) > (%(after_time)s::timestamptz, %(after_id)s::varchar)
  -- Implied by both box tests below, and in plain comparisons whose selectivity the planner
  -- knows from the columns' statistics: with a small box it filters the bucket's rows first
  -- instead of walking all of them in page order.
  AND (%(min_latitude)s::float8 IS NULL
       OR (d.max_latitude >= %(min_latitude)s AND d.min_latitude <= %(max_latitude)s))
  AND (b.inside OR minute.inside OR raw.inside
       OR (b.touches AND d.{bucket} < (SELECT coalesce(max(raw_horizon), '-infinity')
                                       FROM retention_runs)))
  AND (%(airline)s::text IS NULL OR m.airline = %(airline)s)
  AND (%(departure_airport)s::text IS NULL OR m.departure_airport = %(departure_airport)s)
  AND (%(arrival_airport)s::text IS NULL OR m.arrival_airport = %(arrival_airport)s)
ORDER BY d.first_seen, d.flight_id
LIMIT %(limit)s
