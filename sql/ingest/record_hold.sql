-- A load whose blocking check failed: its counts, the check and its value. The published
-- ledger row of the day (partition_loads), if any, stays as it was.
INSERT INTO held_loads (partition_day, state, failed_check, check_value, threshold, files,
                        rows_read, rows_stored, rows_quarantined, duplicates, min_timestamp,
                        max_timestamp, fingerprint, held_at, decided_by, decided_at)
VALUES (%(partition_day)s, 'held', %(failed_check)s, %(check_value)s, %(threshold)s, %(files)s,
        %(rows_read)s, %(rows_stored)s, %(rows_quarantined)s, %(duplicates)s, %(min_timestamp)s,
        %(max_timestamp)s, %(fingerprint)s, now(), NULL, NULL)
ON CONFLICT (partition_day) DO UPDATE SET
    state = 'held', failed_check = EXCLUDED.failed_check, check_value = EXCLUDED.check_value,
    threshold = EXCLUDED.threshold, files = EXCLUDED.files, rows_read = EXCLUDED.rows_read,
    rows_stored = EXCLUDED.rows_stored, rows_quarantined = EXCLUDED.rows_quarantined,
    duplicates = EXCLUDED.duplicates, min_timestamp = EXCLUDED.min_timestamp,
    max_timestamp = EXCLUDED.max_timestamp, fingerprint = EXCLUDED.fingerprint,
    held_at = EXCLUDED.held_at, decided_by = NULL, decided_at = NULL
