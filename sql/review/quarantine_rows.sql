-- Quarantined rows for review, newest day first, in file order. Every filter is optional
-- (NULL: no filter); the reason matches as a case-insensitive substring.
SELECT partition_day, held, source_file, line, byte_offset, reason, raw_record
FROM quarantine
WHERE (%(day)s::date IS NULL OR partition_day = %(day)s::date)
  -- Text as typed, not a pattern: `%%` and `_` (common in file names) match themselves.
  AND (%(reason)s::text IS NULL OR strpos(lower(reason), lower(%(reason)s::text)) > 0)
  AND (%(file)s::text IS NULL OR source_file = %(file)s::text
       OR right(source_file, length(%(file)s::text) + 1) = '/' || %(file)s::text)
ORDER BY partition_day DESC, held DESC, source_file, line NULLS LAST, byte_offset, id
LIMIT %(limit)s
