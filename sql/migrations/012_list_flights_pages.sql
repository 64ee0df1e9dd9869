-- ListFlights' box tests as functions, so its two statements (sql/api/list_flights.sql, any
-- window; sql/api/list_flights_one_day.sql, one whole UTC day) share one definition. Plain
-- SQL expressions, inlined by the planner. A part's box is [min_latitude, max_latitude] x
-- west..east longitudes, the query's [q_min_latitude, q_max_latitude] x q_west..q_east; a
-- longitude span with west > east crosses the antimeridian (migration 010). Only comparisons:
-- a rounded edge could claim a report just outside a box is inside it.

-- Whether every report of the part lies inside the query box (true without a box).
CREATE OR REPLACE FUNCTION box_holds(min_latitude DOUBLE PRECISION,
                                     max_latitude DOUBLE PRECISION,
                                     west DOUBLE PRECISION,
                                     east DOUBLE PRECISION,
                                     q_min_latitude DOUBLE PRECISION,
                                     q_max_latitude DOUBLE PRECISION,
                                     q_west DOUBLE PRECISION,
                                     q_east DOUBLE PRECISION)
RETURNS BOOLEAN LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT q_min_latitude IS NULL
           OR (min_latitude >= q_min_latitude AND max_latitude <= q_max_latitude
               AND CASE WHEN q_west <= q_east
                        -- Only the whole circle holds a part across the antimeridian.
                        THEN (west <= east AND west >= q_west AND east <= q_east)
                             OR (q_west <= -180 AND q_east >= 180)
                        WHEN west <= east
                        -- A plain part lies in one of the query's two pieces.
                        THEN west >= q_west OR east <= q_east
                        ELSE west >= q_west AND east <= q_east
                   END)
$$;

-- Whether the part's box meets the query box (NULL without a box): then a report of the part
-- may lie inside, and only a look at the raw reports decides.
CREATE OR REPLACE FUNCTION box_touches(min_latitude DOUBLE PRECISION,
                                       max_latitude DOUBLE PRECISION,
                                       west DOUBLE PRECISION,
                                       east DOUBLE PRECISION,
                                       q_min_latitude DOUBLE PRECISION,
                                       q_max_latitude DOUBLE PRECISION,
                                       q_west DOUBLE PRECISION,
                                       q_east DOUBLE PRECISION)
RETURNS BOOLEAN LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT max_latitude >= q_min_latitude AND min_latitude <= q_max_latitude
           AND CASE WHEN q_west <= q_east AND west <= east
                    THEN west <= q_east AND east >= q_west
                    -- Exactly one crosses: the plain one reaches into a piece of the other.
                    WHEN q_west <= q_east
                    THEN west <= q_east OR east >= q_west
                    WHEN west <= east
                    THEN east >= q_west OR west <= q_east
                    -- Both cross: both hold the antimeridian.
                    ELSE true
               END
$$;

-- A page of one day's flights in (first_seen, flight_id) order walks this index and stops
-- after the page, instead of reading every flight of the day.
CREATE INDEX IF NOT EXISTS flight_days_pages_idx ON flight_days (day, first_seen, flight_id);
