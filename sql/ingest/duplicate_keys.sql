-- Keys stored more than once in the window a partition touched (from its ledger row). The
-- primary key forbids it; the check proves the table still has that key (a schema change or
-- a restore without it would show here).
SELECT count(*) FROM (
    SELECT 1
    FROM flight_data d
    JOIN partition_loads l ON d."timestamp" BETWEEN l.min_timestamp AND l.max_timestamp
    WHERE l.partition_day = %(day)s
    GROUP BY d.flight_id, d."timestamp"
    HAVING count(*) > 1
) AS repeated
