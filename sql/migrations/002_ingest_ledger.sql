-- What the pipeline did with every row it read, kept beside the data it stored.

-- Rejected input, each row with its reason and enough context to find and fix it.
-- A partition re-run replaces its own quarantine rows, so this stays idempotent.
CREATE TABLE quarantine (
    id             BIGSERIAL PRIMARY KEY,
    partition_day  DATE        NOT NULL,
    source_file    TEXT        NOT NULL,
    line           BIGINT,
    byte_offset    BIGINT,
    reason         TEXT        NOT NULL,
    raw_record     TEXT,
    quarantined_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX quarantine_partition_idx ON quarantine (partition_day);

-- One row per loaded partition: the counts the reconciliation check compares, and the
-- time range the partition touched (the window its aggregates are refreshed over).
CREATE TABLE partition_loads (
    partition_day    DATE PRIMARY KEY,
    files            INT         NOT NULL,
    rows_read        BIGINT      NOT NULL,
    rows_stored      BIGINT      NOT NULL,
    rows_quarantined BIGINT      NOT NULL,
    duplicates       BIGINT      NOT NULL,
    min_timestamp    TIMESTAMPTZ,
    max_timestamp    TIMESTAMPTZ,
    fingerprint      TEXT        NOT NULL,
    loaded_at        TIMESTAMPTZ NOT NULL DEFAULT now()
);
