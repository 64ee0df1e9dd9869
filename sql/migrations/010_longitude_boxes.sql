-- The smallest longitude box of a set of reports, from four extremes that aggregate by min
-- and max (so a day's box composes from its minutes' extremes, like every other column).
--
-- min(longitude)..max(longitude) is the span through Greenwich; a flight crossing the
-- antimeridian (179.9 E to 179.9 W) gets a box around the globe from it. The span the other
-- way, through the antimeridian, runs from the least eastern longitude (>= 0) to the greatest
-- western one (< 0). Both are kept as the reports' own longitudes rather than shifted into
-- [0, 360) (`longitude + 360` rounds, and a rounded edge could let a box test claim a report
-- just outside a box is inside it); a box is then decided by comparisons alone.
--
-- The box is the narrower of the two spans; only strictly narrower crosses the antimeridian.
-- For reports within 180 degrees of one another that is the smallest arc holding them all;
-- wider, it is still a box holding them all. A box across the antimeridian has its west edge
-- greater than its east edge, as a ListFlights request box does.

-- Each function states the choice in full rather than calling a shared one: a continuous
-- aggregate's refresh runs with search_path = pg_catalog, where a function called by name from
-- inside another's body is not found. NULL (no report on one side) makes the comparison NULL:
-- the span through Greenwich.
CREATE FUNCTION longitude_box_west(min_longitude DOUBLE PRECISION,
                                   max_longitude DOUBLE PRECISION,
                                   min_east_longitude DOUBLE PRECISION,
                                   max_west_longitude DOUBLE PRECISION)
RETURNS DOUBLE PRECISION LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE WHEN 360 - (min_east_longitude - max_west_longitude)
                     < max_longitude - min_longitude
                THEN min_east_longitude ELSE min_longitude END
$$;

CREATE FUNCTION longitude_box_east(min_longitude DOUBLE PRECISION,
                                   max_longitude DOUBLE PRECISION,
                                   min_east_longitude DOUBLE PRECISION,
                                   max_west_longitude DOUBLE PRECISION)
RETURNS DOUBLE PRECISION LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE WHEN 360 - (min_east_longitude - max_west_longitude)
                     < max_longitude - min_longitude
                THEN max_west_longitude ELSE max_longitude END
$$;
