-- Held loads of days past the raw retention: accepting one would publish points the cleaner
-- drops, so their staged rows (points, metadata, held quarantine rows) and the held_loads
-- row go with the raw chunks. Returns the held_loads rows deleted.
WITH points AS (
    DELETE FROM held_points WHERE partition_day < %(before)s
), metadata AS (
    DELETE FROM held_metadata WHERE partition_day < %(before)s
), held_rejects AS (
    DELETE FROM quarantine WHERE held AND partition_day < %(before)s
)
DELETE FROM held_loads WHERE partition_day < %(before)s
