-- Quarantined rows counted by day, held or published, and full reason (grouped by kind of
-- reason in Python, as the ingest's reject_reasons table is), under the same filters as
-- review/quarantine_rows (review/quarantine_matching, composed in).
SELECT partition_day, held, reason, count(*) AS n
FROM quarantine
WHERE {matching}
GROUP BY partition_day, held, reason
