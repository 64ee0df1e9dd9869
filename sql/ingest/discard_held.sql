-- A new load of a day replaces the day's earlier held load (its points, metadata and
-- quarantine rows), whether the new load publishes or is held in turn. The held_loads row
-- stays until the new load records its own outcome.
WITH gone_points AS (
    DELETE FROM held_points WHERE partition_day = %(day)s
), gone_metadata AS (
    DELETE FROM held_metadata WHERE partition_day = %(day)s
)
DELETE FROM quarantine WHERE partition_day = %(day)s AND held
