-- Taken by every transaction that writes flight_data; the cleaner holds the same lock
-- exclusively while it refreshes and drops, so neither runs into the other's range.
SELECT pg_advisory_xact_lock_shared(%(lock_class)s, %(lock_key)s)
