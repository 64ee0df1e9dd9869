-- Accepting a held day: its counts become the day's published ledger row, marked accepted
-- with who and when; the held row keeps the decision.
WITH decided AS (
    UPDATE held_loads SET state = 'accepted', decided_by = %(by)s, decided_at = now()
    WHERE partition_day = %(day)s
    RETURNING *
)
INSERT INTO partition_loads (partition_day, files, rows_read, rows_stored, rows_quarantined,
                             duplicates, min_timestamp, max_timestamp, fingerprint, loaded_at,
                             state, accepted_by, accepted_at)
SELECT partition_day, files, rows_read, rows_stored, rows_quarantined, duplicates,
       min_timestamp, max_timestamp, fingerprint, held_at, 'accepted', decided_by, decided_at
FROM decided
ON CONFLICT (partition_day) DO UPDATE SET
    files = EXCLUDED.files, rows_read = EXCLUDED.rows_read, rows_stored = EXCLUDED.rows_stored,
    rows_quarantined = EXCLUDED.rows_quarantined, duplicates = EXCLUDED.duplicates,
    min_timestamp = EXCLUDED.min_timestamp, max_timestamp = EXCLUDED.max_timestamp,
    fingerprint = EXCLUDED.fingerprint, loaded_at = EXCLUDED.loaded_at,
    state = EXCLUDED.state, accepted_by = EXCLUDED.accepted_by,
    accepted_at = EXCLUDED.accepted_at
