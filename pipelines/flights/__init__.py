"""Flight identity: cutting an aircraft's positions into flights, shared by ingest and store."""
