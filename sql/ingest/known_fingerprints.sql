-- Fingerprints of the drops each day was last loaded from, published or held (a held or
-- rejected load of unchanged files would only be held again): the landing sensor requests a
-- run only for a day whose files differ from all of these.
SELECT partition_day, fingerprint FROM partition_loads
UNION
SELECT partition_day, fingerprint FROM held_loads
