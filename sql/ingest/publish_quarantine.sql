-- A published load's quarantine replaces the day's previous one: the new rows were written
-- as held (a failing load keeps them aside), and become the day's quarantine now.
WITH previous AS (
    DELETE FROM quarantine WHERE partition_day = %(day)s AND NOT held
)
UPDATE quarantine SET held = false WHERE partition_day = %(day)s AND held
