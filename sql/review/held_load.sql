-- The day's held load, locked until the decision commits (the day's advisory lock already
-- keeps loads of the same day out).
SELECT partition_day, state, failed_check, check_value, threshold, files, rows_read,
       rows_stored, rows_quarantined, duplicates, min_timestamp, max_timestamp, held_at,
       decided_by, decided_at
FROM held_loads
WHERE partition_day = %(day)s
FOR UPDATE
