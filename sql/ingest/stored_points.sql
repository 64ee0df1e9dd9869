-- Stored points for keys seen twice in one partition: the earlier record, to tell an exact
-- duplicate from a conflicting one.
SELECT d.flight_id, d."timestamp", d.latitude, d.longitude, d.altitude, d.airspeed, d.track,
       d.vertical_rate, d.on_ground, d.squawk
FROM flight_data d
JOIN unnest(%(flight_ids)s::text[], %(timestamps)s::timestamptz[]) AS k(flight_id, ts)
  ON d.flight_id = k.flight_id AND d."timestamp" = k.ts
