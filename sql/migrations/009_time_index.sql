-- The time index of flight_data becomes a BRIN index: a few kilobytes per day instead of a
-- B-tree as large as the heap (73 of 211 bytes per point on a time-ordered day).
--
-- Every read of flight_data that is not by flight (which the primary key serves) is by a
-- time range inside one-day chunks: the point totals of a refreshed window, the rollups'
-- recomputation of a day, the last points before midnight that OpenSky flight identity
-- continues from, the cleaner's "anything left before the horizon". Chunk exclusion picks
-- the days; within a day, drops arrive in time order, so the rows of an instant sit in a few
-- neighbouring blocks and a block-range summary finds them. Out-of-order drops still read
-- correctly (more blocks are visited). On the licensed edition compressed chunks keep their
-- own per-segment min/max instead.
DROP INDEX IF EXISTS flight_data_time_flight_idx;
CREATE INDEX flight_data_time_brin ON flight_data USING brin ("timestamp");
