-- Quarantined rows counted by day, held or published, and full reason (grouped by kind of
-- reason in Python, as the ingest's reject_reasons table is), under the same filters as
-- review/quarantine_rows.
SELECT partition_day, held, reason, count(*) AS n
FROM quarantine
WHERE (%(day)s::date IS NULL OR partition_day = %(day)s::date)
  AND (%(reason)s::text IS NULL OR reason ILIKE '%%' || %(reason)s::text || '%%')
  AND (%(file)s::text IS NULL OR source_file = %(file)s::text
       OR source_file LIKE '%%/' || %(file)s::text)
GROUP BY partition_day, held, reason
