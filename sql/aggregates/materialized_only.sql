SELECT view_name, materialized_only FROM timescaledb_information.continuous_aggregates
WHERE view_schema = current_schema() AND view_name = ANY(%(aggregates)s)
