ALTER MATERIALIZED VIEW {aggregate} SET (timescaledb.materialized_only = {materialized_only})
