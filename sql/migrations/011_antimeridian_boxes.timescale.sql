-- Bounding boxes that cross the antimeridian (licensed edition): the aggregates gain the
-- inner longitude extremes and the smallest box they give (migration 010, docs/aggregates.md).
--
-- A continuous aggregate cannot gain columns, so all three are dropped (traffic_hours and
-- flight_days are built on flight_minutes) and created again as 003 made them, with the new
-- columns last: empty, materialized only, no policies (migrations 006 and 008 changed no
-- aggregate). WITH DATA and refresh_continuous_aggregate cannot run inside this transaction:
-- once it commits, the migration runner refreshes them over the stored raw points, above the
-- raw horizon (pipelines/warehouse/migrations.py), as the marker line below asks.
-- after commit: refresh aggregates
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
