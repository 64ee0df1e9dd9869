-- flights_reader: the role the API reads as (FLIGHTS_API_DB_ROLE=flights_reader). It can read
-- the flight store and nothing else. NOLOGIN: the API logs in as its own user, made a member
-- (GRANT flights_reader TO <api user>), and switches to it in every transaction.
--
-- Roles belong to the server, not the database, so the role may already exist (another
-- database on the same server), or be being created by a concurrent migration elsewhere.
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'flights_reader') THEN
        CREATE ROLE flights_reader NOLOGIN;
    END IF;
EXCEPTION
    WHEN duplicate_object OR unique_violation THEN
        NULL;  -- created meanwhile by another database's migration
END
$$;

GRANT USAGE ON SCHEMA public TO flights_reader;
GRANT SELECT ON ALL TABLES IN SCHEMA public TO flights_reader;
-- Tables later migrations create (as the same migrating user) are readable too.
ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT SELECT ON TABLES TO flights_reader;
