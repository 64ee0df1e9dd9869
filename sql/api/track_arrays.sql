-- Points as one row of arrays in PostgreSQL's binary array format: the API decodes them with
-- numpy instead of building a Python tuple per point. The subquery is one of the
-- track_*.sql queries, ordered by time; NULLs become NaN (arrays with NULLs have no fixed stride).
-- available and reports: the source's point count and the reports they stand for, where the
-- subquery knows them (track_even.sql).
SELECT count(*) AS points,
       array_send(array_agg(p."timestamp")) AS times,
       array_send(array_agg(p.latitude::float8)) AS latitude,
       array_send(array_agg(p.longitude::float8)) AS longitude,
       array_send(array_agg(coalesce(p.altitude::float8, 'NaN'))) AS altitude,
       array_send(array_agg(coalesce(p.airspeed::float8, 'NaN'))) AS airspeed,
       array_send(array_agg(coalesce(p.track::float8, 'NaN'))) AS track,
       array_send(array_agg(coalesce(p.vertical_rate::float8, 'NaN'))) AS vertical_rate,
       array_send(array_agg(coalesce(p.on_ground::int::float8, 'NaN'))) AS on_ground,
       coalesce(max(p.n), 0) AS available,
       coalesce(max(p.reports_total), 0)::bigint AS reports
FROM ({points}) AS p
