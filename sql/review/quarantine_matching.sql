-- Which quarantined rows an operator asked for (review/quarantine_rows, /quarantine_reasons).
-- Every filter is optional (NULL: no filter). The reason matches as a case-insensitive
-- substring, as typed rather than as a pattern: `%%` and `_` (common in file names) match
-- themselves. A file matches by its whole stored path or by its trailing path components.
(%(day)s::date IS NULL OR partition_day = %(day)s::date)
AND (%(reason)s::text IS NULL OR strpos(lower(reason), lower(%(reason)s::text)) > 0)
AND (%(file)s::text IS NULL OR source_file = %(file)s::text
     OR right(source_file, length(%(file)s::text) + 1) = '/' || %(file)s::text)
