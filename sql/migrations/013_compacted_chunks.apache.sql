-- Apache edition: which raw chunks the cleaner rebuilt compact, and how large their indexes
-- were then (pipelines/warehouse/columnstore.py). Drops arrive in time order, so the
-- primary key (flight, time) of a day being loaded takes inserts all over its range and its
-- pages split half full: 71 of 163 bytes per point on the real OpenSky day, 41 once rebuilt.
-- A day past the compression age is rebuilt once; again only when rewrites grew its indexes
-- since (the size recorded here). Chunk names are never reused, so a name identifies a day's
-- chunk for good; rows of dropped chunks go with the cleaner's drop.
CREATE TABLE compacted_chunks (
    chunk        TEXT PRIMARY KEY,  -- the chunk as a qualified name (regclass text)
    index_bytes  BIGINT NOT NULL,
    compacted_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
