-- Quarantined rows counted by day, held or published, and full reason (grouped by kind of
-- reason in Python, as the ingest's reject_reasons table is), under the same filters as
-- review/quarantine_rows.
SELECT partition_day, held, reason, count(*) AS n
FROM quarantine
WHERE (%(day)s::date IS NULL OR partition_day = %(day)s::date)
  -- Text as typed, not a pattern: `%%` and `_` (common in file names) match themselves.
  AND (%(reason)s::text IS NULL OR strpos(lower(reason), lower(%(reason)s::text)) > 0)
  AND (%(file)s::text IS NULL OR source_file = %(file)s::text
       OR right(source_file, length(%(file)s::text) + 1) = '/' || %(file)s::text)
GROUP BY partition_day, held, reason
