-- The state a loaded day's flights were identified from (NULL: no OpenSky rows) and the
-- fingerprint of its files; no row when the day was never loaded.
SELECT carried_state, fingerprint FROM partition_loads WHERE partition_day = %(day)s
