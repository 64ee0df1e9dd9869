-- Aggregates of flight history as continuous aggregates (licensed edition of TimescaleDB).
-- 003_aggregates.apache.sql builds rollup tables with the same names and columns; readers
-- cannot tell them apart. The columns each aggregate serves are described in
-- docs/aggregates.md.
--
-- Created empty (WITH NO DATA, which is allowed inside the migration's transaction) and
-- materialized only: the pipeline refreshes them over the windows it writes, never below
-- the raw retention horizon (pipelines/warehouse/aggregates.py). No refresh policies: the
-- pipeline's own runs refresh and drop, so TimescaleDB's scheduler is not needed.

-- Per flight and minute: the source of downsampled tracks. first_time / last_time and the
-- bounding box let the coarser aggregates stay exact.
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
       max(longitude) AS max_longitude
FROM flight_data
GROUP BY 1, 2
WITH NO DATA;

-- Per flight and UTC day, built from the minutes (hierarchical): flight search and summaries.
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
       max(max_longitude) AS max_longitude
FROM flight_minutes
GROUP BY 1, 2
WITH NO DATA;

-- Traffic per hour, built from the minutes: the operator's volume view.
CREATE MATERIALIZED VIEW traffic_hours
WITH (timescaledb.continuous, timescaledb.materialized_only = true) AS
SELECT time_bucket(INTERVAL '1 hour', bucket) AS bucket,
       count(DISTINCT flight_id) AS flights,
       sum(points)::bigint AS points
FROM flight_minutes
GROUP BY 1
WITH NO DATA;
