-- Aggregates of flight history as rollup tables (Apache edition of TimescaleDB, which refuses
-- continuous aggregates). Same names and columns as 003_aggregates.timescale.sql; readers
-- cannot tell them apart. Each rollup is a hypertable, so aggregate retention drops chunks.
--
-- pipelines/warehouse/aggregates.py refreshes a window by deleting the rollup rows in it and
-- inserting what the *_between functions below compute, in one transaction, finer first.
-- Rollups of days whose raw data is gone are never refreshed again, so they stay.

CREATE TABLE flight_minutes (
    bucket          TIMESTAMPTZ      NOT NULL,
    flight_id       VARCHAR(12)      NOT NULL,
    points          BIGINT           NOT NULL,
    first_latitude  DOUBLE PRECISION NOT NULL,
    first_longitude DOUBLE PRECISION NOT NULL,
    last_latitude   DOUBLE PRECISION NOT NULL,
    last_longitude  DOUBLE PRECISION NOT NULL,
    min_altitude    INT,
    max_altitude    INT,
    avg_altitude    DOUBLE PRECISION,
    avg_airspeed    DOUBLE PRECISION,
    max_airspeed    INT,
    first_time      TIMESTAMPTZ      NOT NULL,
    last_time       TIMESTAMPTZ      NOT NULL,
    min_latitude    DOUBLE PRECISION NOT NULL,
    max_latitude    DOUBLE PRECISION NOT NULL,
    min_longitude   DOUBLE PRECISION NOT NULL,
    max_longitude   DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (flight_id, bucket)
);
SELECT create_hypertable('flight_minutes', 'bucket', chunk_time_interval => INTERVAL '10 days',
                         create_default_indexes => false);
CREATE INDEX flight_minutes_bucket_idx ON flight_minutes (bucket DESC);

CREATE TABLE flight_days (
    day           TIMESTAMPTZ      NOT NULL,
    flight_id     VARCHAR(12)      NOT NULL,
    first_seen    TIMESTAMPTZ      NOT NULL,
    last_seen     TIMESTAMPTZ      NOT NULL,
    points        BIGINT           NOT NULL,
    max_altitude  INT,
    max_airspeed  INT,
    min_latitude  DOUBLE PRECISION NOT NULL,
    max_latitude  DOUBLE PRECISION NOT NULL,
    min_longitude DOUBLE PRECISION NOT NULL,
    max_longitude DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (flight_id, day)
);
SELECT create_hypertable('flight_days', 'day', chunk_time_interval => INTERVAL '10 days',
                         create_default_indexes => false);
CREATE INDEX flight_days_day_idx ON flight_days (day DESC);

CREATE TABLE traffic_hours (
    bucket  TIMESTAMPTZ NOT NULL PRIMARY KEY,
    flights BIGINT      NOT NULL,
    points  BIGINT      NOT NULL
);
SELECT create_hypertable('traffic_hours', 'bucket', chunk_time_interval => INTERVAL '10 days',
                         create_default_indexes => false);

-- The rows of each rollup for [window_start, window_end); the window is whole UTC days.
CREATE FUNCTION flight_minutes_between(window_start TIMESTAMPTZ, window_end TIMESTAMPTZ)
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
           max(longitude) AS max_longitude
    FROM flight_data
    WHERE "timestamp" >= window_start AND "timestamp" < window_end
    GROUP BY 1, 2
$$;

CREATE FUNCTION flight_days_between(window_start TIMESTAMPTZ, window_end TIMESTAMPTZ)
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
           max(max_longitude) AS max_longitude
    FROM flight_minutes
    WHERE bucket >= window_start AND bucket < window_end
    GROUP BY 1, 2
$$;

CREATE FUNCTION traffic_hours_between(window_start TIMESTAMPTZ, window_end TIMESTAMPTZ)
RETURNS SETOF traffic_hours LANGUAGE sql STABLE AS $$
    SELECT time_bucket(INTERVAL '1 hour', bucket) AS bucket,
           count(DISTINCT flight_id) AS flights,
           sum(points)::bigint AS points
    FROM flight_minutes
    WHERE bucket >= window_start AND bucket < window_end
    GROUP BY 1
$$;

-- The Apache edition has no invalidation log: these UTC days had points written since their
-- rollups were last refreshed. Every load the ingest records marks the days it touched (and,
-- when a load is replaced or removed, the days the old one touched); a refresh clears the
-- days it covers. The cleaner refreshes the stale days it is about to drop, and only those,
-- so dropping a day costs the same however many points it held.
CREATE TABLE aggregate_stale_days (
    day       DATE        PRIMARY KEY,
    marked_at TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE FUNCTION mark_aggregate_days_stale() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP <> 'INSERT' AND OLD.min_timestamp IS NOT NULL THEN
        INSERT INTO aggregate_stale_days (day)
        SELECT generate_series((OLD.min_timestamp AT TIME ZONE 'UTC')::date,
                               (OLD.max_timestamp AT TIME ZONE 'UTC')::date,
                               INTERVAL '1 day')::date
        ON CONFLICT (day) DO NOTHING;
    END IF;
    IF TG_OP <> 'DELETE' AND NEW.min_timestamp IS NOT NULL THEN
        INSERT INTO aggregate_stale_days (day)
        SELECT generate_series((NEW.min_timestamp AT TIME ZONE 'UTC')::date,
                               (NEW.max_timestamp AT TIME ZONE 'UTC')::date,
                               INTERVAL '1 day')::date
        ON CONFLICT (day) DO NOTHING;
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER partition_loads_mark_aggregates_stale
AFTER INSERT OR UPDATE OR DELETE ON partition_loads
FOR EACH ROW EXECUTE FUNCTION mark_aggregate_days_stale();

-- Points loaded before the rollups existed are stale too.
INSERT INTO aggregate_stale_days (day)
SELECT DISTINCT generate_series((min_timestamp AT TIME ZONE 'UTC')::date,
                                (max_timestamp AT TIME ZONE 'UTC')::date,
                                INTERVAL '1 day')::date
FROM partition_loads
WHERE min_timestamp IS NOT NULL;
