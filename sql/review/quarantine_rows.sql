-- Quarantined rows for review, newest day first, in file order, under the operator's
-- filters (review/quarantine_matching, composed in).
SELECT partition_day, held, source_file, line, byte_offset, reason, raw_record
FROM quarantine
WHERE {matching}
ORDER BY partition_day DESC, held DESC, source_file, line NULLS LAST, byte_offset, id
LIMIT %(limit)s
