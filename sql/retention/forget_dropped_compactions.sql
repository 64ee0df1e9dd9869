-- Apache edition: compacted_chunks rows of chunks that no longer exist (dropped by retention).
DELETE FROM compacted_chunks WHERE to_regclass(chunk) IS NULL
