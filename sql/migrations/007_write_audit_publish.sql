-- Write-audit-publish: a day whose blocking checks fail is held, not published. Readers (the
-- API, the aggregates) only ever see flight_data and flight_metadata, so held rows wait in
-- tables of their own until an operator accepts (publishes them) or rejects (discards them).

-- The published ledger row says how its rows got there: `loaded` (the checks passed) or
-- `accepted` (an operator published a held load), and by whom and when.
ALTER TABLE partition_loads
    ADD COLUMN state       TEXT NOT NULL DEFAULT 'loaded'
                           CHECK (state IN ('loaded', 'accepted')),
    ADD COLUMN accepted_by TEXT,
    ADD COLUMN accepted_at TIMESTAMPTZ;

-- The latest held load of each day, and what became of it: `held` (waiting for review),
-- `accepted` or `rejected` (decided by whom and when; the rows have moved or gone). A day
-- may be held while an older load of it stays published in partition_loads.
CREATE TABLE held_loads (
    partition_day    DATE PRIMARY KEY,
    state            TEXT NOT NULL DEFAULT 'held'
                     CHECK (state IN ('held', 'accepted', 'rejected')),
    failed_check     TEXT             NOT NULL,
    check_value      DOUBLE PRECISION,
    threshold        DOUBLE PRECISION,
    files            INT              NOT NULL,
    rows_read        BIGINT           NOT NULL,
    rows_stored      BIGINT           NOT NULL,
    rows_quarantined BIGINT           NOT NULL,
    duplicates       BIGINT           NOT NULL,
    min_timestamp    TIMESTAMPTZ,
    max_timestamp    TIMESTAMPTZ,
    fingerprint      TEXT             NOT NULL,
    held_at          TIMESTAMPTZ      NOT NULL DEFAULT now(),
    decided_by       TEXT,
    decided_at       TIMESTAMPTZ
);

-- A held load's points, exactly as the load left them (after duplicates were settled), so
-- accepting publishes them without reading the drops again. A plain table: held days are
-- few and short-lived, and retention of flight_data chunks must never touch them.
CREATE TABLE held_points (
    partition_day DATE NOT NULL,
    LIKE flight_data INCLUDING DEFAULTS,
    PRIMARY KEY (partition_day, flight_id, "timestamp")
);

-- A held load's flight metadata (what it would upsert into flight_metadata).
CREATE TABLE held_metadata (
    partition_day     DATE        NOT NULL,
    flight_id         VARCHAR(12) NOT NULL,
    airline           VARCHAR(128),
    flight_number     VARCHAR(16),
    departure_airport VARCHAR(8),
    arrival_airport   VARCHAR(8),
    icao24            VARCHAR(6),
    callsign          VARCHAR(8),
    PRIMARY KEY (partition_day, flight_id)
);

-- Quarantine rows of a held load sit beside the published load's rows of the same day until
-- the operator decides: accepting replaces the published ones, rejecting drops these.
ALTER TABLE quarantine ADD COLUMN held BOOLEAN NOT NULL DEFAULT false;
