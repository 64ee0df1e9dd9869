-- A re-run's keys, as it writes them: stored rows of the day's OpenSky flights that the
-- re-run did not produce (their flight was re-keyed) are deleted at its end.
CREATE TEMP TABLE produced_keys (flight_id VARCHAR(12), "timestamp" TIMESTAMPTZ) ON COMMIT DROP
