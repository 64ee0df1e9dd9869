-- Flight identity whatever the order days arrive in: each loaded day records the state its
-- OpenSky flights were identified from (a fingerprint of the aircraft's last points before
-- its midnight; NULL when it had no OpenSky rows). Loading a day re-identifies the next day
-- when the state that day would start from now differs from the one it recorded.
ALTER TABLE partition_loads ADD COLUMN carried_state TEXT;
