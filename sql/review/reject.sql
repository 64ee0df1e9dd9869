-- Rejecting a held day: the decision is kept, the held rows are gone (the quarantine, points
-- and metadata are dropped by ingest/discard_held in the same transaction).
UPDATE held_loads SET state = 'rejected', decided_by = %(by)s, decided_at = now()
WHERE partition_day = %(day)s
