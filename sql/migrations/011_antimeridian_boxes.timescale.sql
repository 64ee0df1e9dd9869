-- Bounding boxes that cross the antimeridian (licensed edition): the aggregates gain the
-- inner longitude extremes and the smallest box they give (migration 010, docs/aggregates.md).
--
-- A continuous aggregate cannot gain columns, so all three are dropped (traffic_hours and
-- flight_days are built on flight_minutes) and created again as 003 made them, with the new
-- columns last: materialized only, no policies (migrations 006 and 008 changed no
-- aggregate). WITH DATA and refresh_continuous_aggregate cannot run inside this transaction:
-- once it commits, the migration runner refreshes them over the stored raw points, from the
-- first stored day and above the raw horizon (pipelines/warehouse/migrations.py), as the
-- marker line below asks.
-- after commit: refresh aggregates
--
-- Aggregates outlive their raw points (the cleaner drops raw days first): the rows below
-- where that refresh starts cannot be computed again, so they are kept aside here and written
-- back into the new aggregates' materialization tables, nothing lost. Plain tables, dropped at
-- the end: a temporary table would pin session settings (temp_buffers) for the session. Their inner longitude
-- extremes are unknown where a minute had reports on both sides of Greenwich; 0 bounds them
-- (the reports lie within min..max), so their box stays the span through Greenwich, as the
-- Apache edition's rows below the raw horizon get in 011_antimeridian_boxes.apache.sql.
CREATE TABLE migration_011_kept_below AS
SELECT greatest(
           coalesce((SELECT date_trunc('day', min("timestamp"), 'UTC') FROM flight_data),
                    'infinity'),
           coalesce((SELECT max(raw_horizon) FROM retention_runs), '-infinity')) AS start;
CREATE TABLE migration_011_kept_minutes AS
SELECT m.*,
       CASE WHEN m.min_longitude >= 0 THEN m.min_longitude
            WHEN m.max_longitude >= 0 THEN 0 END AS min_east_longitude,
       CASE WHEN m.max_longitude < 0 THEN m.max_longitude
            WHEN m.min_longitude < 0 THEN 0 END AS max_west_longitude
FROM flight_minutes AS m WHERE m.bucket < (SELECT start FROM migration_011_kept_below);
-- A day's inner extremes are its minutes' (exact for minutes on one side of Greenwich).
CREATE TABLE migration_011_kept_days AS
SELECT a.*,
       CASE WHEN a.min_longitude >= 0 THEN a.min_longitude
            WHEN a.max_longitude >= 0 THEN coalesce(
                (SELECT min(m.min_east_longitude) FROM migration_011_kept_minutes AS m
                 WHERE m.flight_id = a.flight_id
                   AND m.bucket >= a.day AND m.bucket < a.day + INTERVAL '1 day'), 0)
       END AS min_east_longitude,
       CASE WHEN a.max_longitude < 0 THEN a.max_longitude
            WHEN a.min_longitude < 0 THEN coalesce(
                (SELECT max(m.max_west_longitude) FROM migration_011_kept_minutes AS m
                 WHERE m.flight_id = a.flight_id
                   AND m.bucket >= a.day AND m.bucket < a.day + INTERVAL '1 day'), 0)
       END AS max_west_longitude
FROM flight_days AS a WHERE a.day < (SELECT start FROM migration_011_kept_below);
CREATE TABLE migration_011_kept_hours AS
SELECT * FROM traffic_hours WHERE bucket < (SELECT start FROM migration_011_kept_below);

DROP MATERIALIZED VIEW traffic_hours;
DROP MATERIALIZED VIEW flight_days;
DROP MATERIALIZED VIEW flight_minutes;

CREATE MATERIALIZED VIEW flight_minutes
WITH (timescaledb.continuous, timescaledb.materialized_only = true) AS
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
       min(CASE WHEN longitude >= 0 THEN longitude END) AS min_east_longitude,
       max(CASE WHEN longitude < 0 THEN longitude END) AS max_west_longitude,
       longitude_box_west(min(longitude), max(longitude),
                          min(CASE WHEN longitude >= 0 THEN longitude END),
                          max(CASE WHEN longitude < 0 THEN longitude END)) AS west_longitude,
       longitude_box_east(min(longitude), max(longitude),
                          min(CASE WHEN longitude >= 0 THEN longitude END),
                          max(CASE WHEN longitude < 0 THEN longitude END)) AS east_longitude
FROM flight_data
GROUP BY 1, 2
WITH NO DATA;

CREATE MATERIALIZED VIEW flight_days
WITH (timescaledb.continuous, timescaledb.materialized_only = true) AS
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
                          min(min_east_longitude), max(max_west_longitude)) AS west_longitude,
       longitude_box_east(min(min_longitude), max(max_longitude),
                          min(min_east_longitude), max(max_west_longitude)) AS east_longitude
FROM flight_minutes
GROUP BY 1, 2
WITH NO DATA;

CREATE MATERIALIZED VIEW traffic_hours
WITH (timescaledb.continuous, timescaledb.materialized_only = true) AS
SELECT time_bucket(INTERVAL '1 hour', bucket) AS bucket,
       count(DISTINCT flight_id) AS flights,
       sum(points)::bigint AS points
FROM flight_minutes
GROUP BY 1
WITH NO DATA;

-- New relations: readable by the API's role like the ones they replace (migration 004).
GRANT SELECT ON flight_minutes, flight_days, traffic_hours TO flights_reader;

-- The kept rows go back into each aggregate's materialization hypertable (named by the public
-- information view; its columns are the aggregate's own, in finalized form).
DO $$
DECLARE
    target regclass;
BEGIN
    SELECT format('%I.%I', materialization_hypertable_schema, materialization_hypertable_name)
    INTO target FROM timescaledb_information.continuous_aggregates
    WHERE view_schema = current_schema() AND view_name = 'flight_minutes';
    EXECUTE format($sql$
        INSERT INTO %s (bucket, flight_id, points, first_latitude, first_longitude,
                        last_latitude, last_longitude, min_altitude, max_altitude,
                        avg_altitude, avg_airspeed, max_airspeed, first_time, last_time,
                        min_latitude, max_latitude, min_longitude, max_longitude,
                        min_east_longitude, max_west_longitude, west_longitude, east_longitude)
        SELECT k.*,
               longitude_box_west(k.min_longitude, k.max_longitude,
                                  k.min_east_longitude, k.max_west_longitude),
               longitude_box_east(k.min_longitude, k.max_longitude,
                                  k.min_east_longitude, k.max_west_longitude)
        FROM migration_011_kept_minutes AS k$sql$, target);

    SELECT format('%I.%I', materialization_hypertable_schema, materialization_hypertable_name)
    INTO target FROM timescaledb_information.continuous_aggregates
    WHERE view_schema = current_schema() AND view_name = 'flight_days';
    EXECUTE format($sql$
        INSERT INTO %s (day, flight_id, first_seen, last_seen, points, max_altitude,
                        max_airspeed, min_latitude, max_latitude, min_longitude, max_longitude,
                        min_east_longitude, max_west_longitude, west_longitude, east_longitude)
        SELECT k.*,
               longitude_box_west(k.min_longitude, k.max_longitude,
                                  k.min_east_longitude, k.max_west_longitude),
               longitude_box_east(k.min_longitude, k.max_longitude,
                                  k.min_east_longitude, k.max_west_longitude)
        FROM migration_011_kept_days AS k$sql$, target);

    SELECT format('%I.%I', materialization_hypertable_schema, materialization_hypertable_name)
    INTO target FROM timescaledb_information.continuous_aggregates
    WHERE view_schema = current_schema() AND view_name = 'traffic_hours';
    EXECUTE format('INSERT INTO %s (bucket, flights, points) '
                   'SELECT bucket, flights, points FROM migration_011_kept_hours', target);
END
$$;

DROP TABLE migration_011_kept_below, migration_011_kept_minutes, migration_011_kept_days,
           migration_011_kept_hours;
