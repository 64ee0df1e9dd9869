-- Rebuild every index of one chunk, packed (REINDEX builds a B-tree bottom up, its leaves
-- 90% full, where inserts in time order left them about half full). CONCURRENTLY: reads of
-- the day (the API's, by the primary key) and writes go on while it runs. TimescaleDB refuses
-- it on a hypertable, not on one of its chunks, whose catalog entries keep their names.
REINDEX TABLE CONCURRENTLY {chunk}
