-- Metadata of flights left without any point by `forget_unproduced`: the flight no longer
-- exists under that id.
DELETE FROM flight_metadata AS m
WHERE m.flight_id = ANY(%(flight_ids)s::text[])
  AND NOT EXISTS (SELECT 1 FROM flight_data AS d WHERE d.flight_id = m.flight_id)
