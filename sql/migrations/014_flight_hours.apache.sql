-- Per-flight hours (Apache edition): a window of hours is answered from a few rows a flight
-- rather than from its sixty minutes an hour (ListFlights reads whole hours here, the
-- minutes and raw reports only at the window's edges). Same columns as flight_days, in the
-- same order as 014_flight_hours.timescale.sql; refreshed with the other rollups, from
-- flight_minutes (pipelines/warehouse/aggregates.py), and kept as long as they are.
CREATE TABLE flight_hours (
    hour               TIMESTAMPTZ      NOT NULL,
    flight_id          VARCHAR(12)      NOT NULL,
    first_seen         TIMESTAMPTZ      NOT NULL,
    last_seen          TIMESTAMPTZ      NOT NULL,
    points             BIGINT           NOT NULL,
    max_altitude       INT,
    max_airspeed       INT,
    min_latitude       DOUBLE PRECISION NOT NULL,
    max_latitude       DOUBLE PRECISION NOT NULL,
    min_longitude      DOUBLE PRECISION NOT NULL,
    max_longitude      DOUBLE PRECISION NOT NULL,
    min_east_longitude DOUBLE PRECISION,
    max_west_longitude DOUBLE PRECISION,
    west_longitude     DOUBLE PRECISION NOT NULL,
    east_longitude     DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (flight_id, hour)
);
SELECT create_hypertable('flight_hours', 'hour', chunk_time_interval => INTERVAL '10 days',
                         create_default_indexes => false);
-- ListFlights reads an hour's flights in (first_seen, flight_id) order.
CREATE INDEX flight_hours_pages_idx ON flight_hours (hour, first_seen, flight_id);

CREATE FUNCTION flight_hours_between(window_start TIMESTAMPTZ, window_end TIMESTAMPTZ)
RETURNS SETOF flight_hours LANGUAGE sql STABLE AS $$
    SELECT time_bucket(INTERVAL '1 hour', bucket) AS hour,
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

-- Every stored minute, below the raw horizon too: the hours are built from minutes, which
-- outlive their raw points.
INSERT INTO flight_hours
SELECT * FROM flight_hours_between('-infinity', 'infinity') ORDER BY 1;

GRANT SELECT ON flight_hours TO flights_reader;
