SELECT pg_advisory_unlock(%(lock_class)s, %(lock_key)s)
