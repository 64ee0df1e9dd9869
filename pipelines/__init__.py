"""Historical Flight Data Aggregator: ADS-B drops to TimescaleDB, served over gRPC."""
