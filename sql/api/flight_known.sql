-- Whether any history of a flight is stored: raw reports, or the per-minute aggregate that
-- outlives them.
SELECT EXISTS (SELECT 1 FROM flight_data WHERE flight_id = %(flight_id)s)
    OR EXISTS (SELECT 1 FROM flight_minutes WHERE flight_id = %(flight_id)s)
