-- A relation's schema and name, apart, from its qualified name: what psycopg.sql.Identifier
-- quotes into a statement that takes no parameters (REINDEX, DROP INDEX).
SELECT n.nspname, c.relname
FROM pg_class AS c
JOIN pg_namespace AS n ON n.oid = c.relnamespace
WHERE c.oid = %(relation)s::regclass
