-- Which of the named aggregates this database has: all of them once migrated; a database
-- at an older schema version (migrations apply in order) lacks the later ones.
SELECT name FROM unnest(%(names)s::text[]) AS name WHERE to_regclass(name) IS NOT NULL
