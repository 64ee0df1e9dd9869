SELECT pg_advisory_lock(%(lock_class)s, %(lock_key)s)
