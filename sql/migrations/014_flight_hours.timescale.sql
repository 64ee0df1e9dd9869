-- Per-flight hours (licensed edition): a window of hours is answered from a few rows a
-- flight rather than from its sixty minutes an hour (ListFlights reads whole hours here, the
-- minutes and raw reports only at the window's edges). A continuous aggregate on
-- flight_minutes, as flight_days is (migration 011), with the columns of
-- 014_flight_hours.apache.sql in the same order; refreshed with the others, finer first.
CREATE MATERIALIZED VIEW flight_hours
WITH (timescaledb.continuous, timescaledb.materialized_only = true) AS
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
                          min(min_east_longitude), max(max_west_longitude)) AS west_longitude,
       longitude_box_east(min(min_longitude), max(max_longitude),
                          min(min_east_longitude), max(max_west_longitude)) AS east_longitude
FROM flight_minutes
GROUP BY 1, 2
WITH NO DATA;

-- ListFlights reads an hour's flights in (first_seen, flight_id) order.
CREATE INDEX flight_hours_pages_idx ON flight_hours (hour, first_seen, flight_id);
GRANT SELECT ON flight_hours TO flights_reader;

-- Every stored minute, below the raw horizon too (minutes outlive their raw points, and a
-- refresh never runs there): written straight into the aggregate's materialization
-- hypertable, as migration 011 wrote back the rows it kept; later refreshes replace the
-- windows they cover, as for any continuous aggregate.
DO $$
DECLARE
    target regclass;
BEGIN
    SELECT format('%I.%I', materialization_hypertable_schema, materialization_hypertable_name)
    INTO target FROM timescaledb_information.continuous_aggregates
    WHERE view_schema = current_schema() AND view_name = 'flight_hours';
    EXECUTE format($sql$
        INSERT INTO %s (hour, flight_id, first_seen, last_seen, points, max_altitude,
                        max_airspeed, min_latitude, max_latitude, min_longitude, max_longitude,
                        min_east_longitude, max_west_longitude, west_longitude, east_longitude)
        SELECT time_bucket(INTERVAL '1 hour', bucket), flight_id,
               min(first_time), max(last_time), sum(points)::bigint,
               max(max_altitude), max(max_airspeed),
               min(min_latitude), max(max_latitude), min(min_longitude), max(max_longitude),
               min(min_east_longitude), max(max_west_longitude),
               longitude_box_west(min(min_longitude), max(max_longitude),
                                  min(min_east_longitude), max(max_west_longitude)),
               longitude_box_east(min(min_longitude), max(max_longitude),
                                  min(min_east_longitude), max(max_west_longitude))
        FROM flight_minutes
        GROUP BY 1, 2
        ORDER BY 1$sql$, target);
END
$$;
