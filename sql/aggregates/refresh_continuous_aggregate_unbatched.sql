-- The same refresh with batching off (TimescaleDB 2.21+, where the `options` argument
-- exists). TimescaleDB 2.28 splits a manual refresh into batches of buckets and can skip the
-- last bucket of an invalidated range (fixed upstream in 2.29, which needs PostgreSQL 16+);
-- one batch recomputes every bucket of the window.
CALL refresh_continuous_aggregate(%(aggregate)s::regclass, %(start)s::timestamptz,
                                  %(end)s::timestamptz,
                                  options => '{"buckets_per_batch": 0}'::jsonb)
