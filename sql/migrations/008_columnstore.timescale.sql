-- Raw days in the columnstore (licensed edition only: the Apache edition refuses compression,
-- so it keeps rows and has no variant of this migration).
--
-- The cleaner compresses the one-day chunks of flight_data once they are older than
-- FLIGHTS_COMPRESS_AFTER_DAYS (pipelines/warehouse/columnstore.py). Segmenting by flight keeps
-- a flight's points together, so reading one flight decompresses only its own segments;
-- ordering by time inside a segment is the order every read wants and makes timestamps and
-- positions delta-encode well (about 14 bytes per point instead of 180). Upserts into a
-- compressed chunk still work: they decompress the segments they touch, and the ingest
-- compresses the chunk again after its load.
ALTER TABLE flight_data SET (
    timescaledb.compress,
    timescaledb.compress_segmentby = 'flight_id',
    timescaledb.compress_orderby = 'timestamp'
);
