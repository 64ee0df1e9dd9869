-- Bounding boxes that cross the antimeridian (Apache edition): the rollups gain the inner
-- longitude extremes and the smallest box they give (migration 010, docs/aggregates.md), with
-- the same columns in the same order as 011_antimeridian_boxes.timescale.sql.
ALTER TABLE flight_minutes
    ADD COLUMN min_east_longitude DOUBLE PRECISION,
    ADD COLUMN max_west_longitude DOUBLE PRECISION,
    ADD COLUMN west_longitude     DOUBLE PRECISION,
    ADD COLUMN east_longitude     DOUBLE PRECISION;
ALTER TABLE flight_days
    ADD COLUMN min_east_longitude DOUBLE PRECISION,
    ADD COLUMN max_west_longitude DOUBLE PRECISION,
    ADD COLUMN west_longitude     DOUBLE PRECISION,
    ADD COLUMN east_longitude     DOUBLE PRECISION;

-- The rows already stored. A minute on one side of Greenwich has its inner extreme in
-- min/max already; one with reports on both sides reads it from its raw reports (a lookup by
-- the primary key). Where those are gone (below the raw horizon) it is unknown, and 0 bounds
-- it: the reports still lie within the extremes, and the box stays the span through Greenwich.
UPDATE flight_minutes AS m
SET min_east_longitude = CASE
        WHEN m.min_longitude >= 0 THEN m.min_longitude
        WHEN m.max_longitude >= 0 THEN coalesce(
            (SELECT min(d.longitude) FROM flight_data AS d
             WHERE d.flight_id = m.flight_id AND d.longitude >= 0
               AND d."timestamp" >= m.bucket AND d."timestamp" < m.bucket + INTERVAL '1 minute'),
            0)
    END,
    max_west_longitude = CASE
        WHEN m.max_longitude < 0 THEN m.max_longitude
        WHEN m.min_longitude < 0 THEN coalesce(
            (SELECT max(d.longitude) FROM flight_data AS d
             WHERE d.flight_id = m.flight_id AND d.longitude < 0
               AND d."timestamp" >= m.bucket AND d."timestamp" < m.bucket + INTERVAL '1 minute'),
            0)
    END;

-- A day's extremes are those of its minutes, which the refresh always writes with the day.
UPDATE flight_days AS a
SET min_east_longitude = CASE
        WHEN a.min_longitude >= 0 THEN a.min_longitude
        WHEN a.max_longitude >= 0 THEN coalesce(
            (SELECT min(m.min_east_longitude) FROM flight_minutes AS m
             WHERE m.flight_id = a.flight_id
               AND m.bucket >= a.day AND m.bucket < a.day + INTERVAL '1 day'),
            0)
    END,
    max_west_longitude = CASE
        WHEN a.max_longitude < 0 THEN a.max_longitude
        WHEN a.min_longitude < 0 THEN coalesce(
            (SELECT max(m.max_west_longitude) FROM flight_minutes AS m
             WHERE m.flight_id = a.flight_id
               AND m.bucket >= a.day AND m.bucket < a.day + INTERVAL '1 day'),
            0)
    END;

UPDATE flight_minutes
SET west_longitude = longitude_box_west(min_longitude, max_longitude,
                                        min_east_longitude, max_west_longitude),
    east_longitude = longitude_box_east(min_longitude, max_longitude,
                                        min_east_longitude, max_west_longitude);
UPDATE flight_days
SET west_longitude = longitude_box_west(min_longitude, max_longitude,
                                        min_east_longitude, max_west_longitude),
    east_longitude = longitude_box_east(min_longitude, max_longitude,
                                        min_east_longitude, max_west_longitude);
ALTER TABLE flight_minutes ALTER COLUMN west_longitude SET NOT NULL,
                           ALTER COLUMN east_longitude SET NOT NULL;
ALTER TABLE flight_days ALTER COLUMN west_longitude SET NOT NULL,
                        ALTER COLUMN east_longitude SET NOT NULL;

-- The refresh computes them from now on (same bodies as in 003, plus the new columns).
CREATE OR REPLACE FUNCTION flight_minutes_between(window_start TIMESTAMPTZ,
                                                  window_end TIMESTAMPTZ)
RETURNS SETOF flight_minutes LANGUAGE sql STABLE AS $$
    SELECT time_bucket(INTERVAL '1 minute', "timestamp") AS bucket,
           flight_id,
           count(*) AS points,
           first(latitude, "timestamp") AS first_latitude,
           first(longitude, "timestamp") AS first_longitude,
           last(latitude, "timestamp") AS last_latitude,
           last(longitude, "timestamp") AS last_longitude,
           min(altitude) AS min_altitude,
           max(altitude) AS max_altitude,
           avg(altitude)::double precision AS avg_altitude,
           avg(airspeed)::double precision AS avg_airspeed,
           max(airspeed) AS max_airspeed,
           min("timestamp") AS first_time,
           max("timestamp") AS last_time,
           min(latitude) AS min_latitude,
           max(latitude) AS max_latitude,
           min(longitude) AS min_longitude,
           max(longitude) AS max_longitude,
           min(east) AS min_east_longitude,
           max(west) AS max_west_longitude,
           longitude_box_west(min(longitude), max(longitude), min(east), max(west)),
           longitude_box_east(min(longitude), max(longitude), min(east), max(west))
    FROM (SELECT *,
                 CASE WHEN longitude >= 0 THEN longitude END AS east,
                 CASE WHEN longitude < 0 THEN longitude END AS west
          FROM flight_data
          WHERE "timestamp" >= window_start AND "timestamp" < window_end) AS d
    GROUP BY 1, 2
$$;

CREATE OR REPLACE FUNCTION flight_days_between(window_start TIMESTAMPTZ, window_end TIMESTAMPTZ)
RETURNS SETOF flight_days LANGUAGE sql STABLE AS $$
    SELECT time_bucket(INTERVAL '1 day', bucket) AS day,
           flight_id,
           min(first_time) AS first_seen,
           max(last_time) AS last_seen,
           sum(points)::bigint AS points,
           max(max_altitude) AS max_altitude,
           max(max_airspeed) AS max_airspeed,
           min(min_latitude) AS min_latitude,
           max(max_latitude) AS max_latitude,
           min(min_longitude) AS min_longitude,
           max(max_longitude) AS max_longitude,
           min(min_east_longitude) AS min_east_longitude,
           max(max_west_longitude) AS max_west_longitude,
           longitude_box_west(min(min_longitude), max(max_longitude),
                              min(min_east_longitude), max(max_west_longitude)),
           longitude_box_east(min(min_longitude), max(max_longitude),
                              min(min_east_longitude), max(max_west_longitude))
    FROM flight_minutes
    WHERE bucket >= window_start AND bucket < window_end
    GROUP BY 1, 2
$$;
