-- What the cleaner removed, one row per run (dry runs are not recorded). The largest
-- raw_horizon is the instant below which raw flight_data has been dropped: aggregates are
-- never refreshed below it, since recomputing them from what is left would erase them.
CREATE TABLE retention_runs (
    id                BIGSERIAL   PRIMARY KEY,
    partition_day     DATE        NOT NULL,
    raw_horizon       TIMESTAMPTZ NOT NULL,
    aggregate_horizon TIMESTAMPTZ NOT NULL,
    quarantine_before DATE        NOT NULL,
    raw_chunks        INT         NOT NULL,
    raw_bytes         BIGINT      NOT NULL,
    raw_range_start   TIMESTAMPTZ,
    raw_range_end     TIMESTAMPTZ,
    aggregate_chunks  INT         NOT NULL,
    quarantine_rows   BIGINT      NOT NULL,
    cleaned_at        TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX retention_runs_raw_horizon_idx ON retention_runs (raw_horizon DESC);
