-- The partition's ledger row: what the reconciliation check compares and the window its
-- aggregates are refreshed over. Replaced on every published run of the partition; a held
-- load of the day that this run supersedes is forgotten.
WITH superseded AS (
    DELETE FROM held_loads WHERE partition_day = %(partition_day)s
)
INSERT INTO partition_loads (partition_day, files, rows_read, rows_stored, rows_quarantined,
                             duplicates, min_timestamp, max_timestamp, fingerprint, carried_state,
                             loaded_at, state, accepted_by, accepted_at)
VALUES (%(partition_day)s, %(files)s, %(rows_read)s, %(rows_stored)s, %(rows_quarantined)s,
        %(duplicates)s, %(min_timestamp)s, %(max_timestamp)s, %(fingerprint)s, %(carried_state)s,
        now(), 'loaded', NULL, NULL)
ON CONFLICT (partition_day) DO UPDATE SET
    files = EXCLUDED.files, rows_read = EXCLUDED.rows_read, rows_stored = EXCLUDED.rows_stored,
    rows_quarantined = EXCLUDED.rows_quarantined, duplicates = EXCLUDED.duplicates,
    min_timestamp = EXCLUDED.min_timestamp, max_timestamp = EXCLUDED.max_timestamp,
    fingerprint = EXCLUDED.fingerprint, carried_state = EXCLUDED.carried_state,
    loaded_at = EXCLUDED.loaded_at, state = 'loaded', accepted_by = NULL, accepted_at = NULL
