-- Compress a chunk; on a partially compressed one this compresses the rows written since
-- (if_not_compressed: a fully compressed chunk is left as it is, with a notice).
SELECT compress_chunk(%(chunk)s::regclass, if_not_compressed => true)
