-- Keys stored more than once in a window. The primary key forbids it; the check proves the
-- table still has that key (a schema change or a restore without it would show here).
SELECT count(*) FROM (
    SELECT 1
    FROM flight_data
    WHERE "timestamp" BETWEEN %s AND %s
    GROUP BY flight_id, "timestamp"
    HAVING count(*) > 1
) AS repeated
