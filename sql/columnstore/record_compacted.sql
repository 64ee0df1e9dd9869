-- The chunk's indexes just rebuilt: their size is the one later growth is measured against.
INSERT INTO compacted_chunks (chunk, index_bytes)
VALUES (%(chunk)s::text, pg_indexes_size(%(chunk)s::text::regclass))
ON CONFLICT (chunk) DO UPDATE SET index_bytes = EXCLUDED.index_bytes, compacted_at = now()
