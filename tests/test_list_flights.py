"""ListFlights is exact: a flight is listed only with a report inside the window (and the box),
and first_seen, last_seen and points are those of its reports in the window, to the
microsecond. Every answer is compared with a direct query of the raw points."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from itertools import pairwise
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from psycopg.rows import class_row

from pipelines.api.validation import to_timestamp as ts
from pipelines.proto import flight_pb2 as pb
from pipelines.warehouse.connection import connect
from pipelines.warehouse.flight_reads import (
    OPEN_END,
    OPEN_START,
    BoundingBox,
    FlightListing,
    FlightQuery,
    FlightReads,
    Window,
    listing_parameters,
    window_parts,
)
from pipelines.warehouse.retention import RetentionPolicy, clean
from pipelines.warehouse.sqlfiles import load_sql
from tests.api import refresh, serving, stub_for

DAY0 = datetime(2024, 2, 29, tzinfo=UTC)
SPAN = timedelta(days=4)
Box = tuple[float, float, float, float]  # min_latitude, min_longitude, max_latitude, max_longitude

# The reports a listing must describe, straight from flight_data.
RAW = """
    SELECT flight_id, min("timestamp"), max("timestamp"), count(*)
    FROM flight_data
    WHERE "timestamp" >= %(start)s AND "timestamp" < %(end)s
    GROUP BY flight_id
    HAVING %(min_lat)s::float8 IS NULL OR bool_or(
        latitude BETWEEN %(min_lat)s AND %(max_lat)s
        AND CASE WHEN %(min_lon)s::float8 <= %(max_lon)s::float8
                 THEN longitude BETWEEN %(min_lon)s AND %(max_lon)s
                 ELSE longitude >= %(min_lon)s OR longitude <= %(max_lon)s END)
"""


def _wrap(longitude: np.ndarray) -> np.ndarray:
    return (longitude + 180.0) % 360.0 - 180.0


def tracks() -> dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Flights as (microseconds since 1970, latitude, longitude): named shapes, then random
    walks at irregular sub-second times, some across the antimeridian and midnight."""
    base = int(DAY0.timestamp() * 1e6)
    out: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}
    i = np.arange(400)
    start = base + int(timedelta(days=1, hours=10, seconds=7).total_seconds() * 1e6) + 123_456
    # An L: east along 45 N, then north along 8 E. Its boxes cover (45.7 N, 7.3 E); no report.
    out["ell"] = (
        start + i * 7_310_017,
        np.where(i < 200, 45.0, 45.0 + (i - 200) / 200),
        np.where(i < 200, 7.0 + i / 200, 8.0),
    )
    # Across midnight and, half an hour later, the antimeridian: 178.5 E to 179.5 W at 40 S.
    start = base + int(timedelta(days=1, hours=23).total_seconds() * 1e6) + 5
    out["across"] = (start + i * 18_000_011, np.full(400, -40.0), _wrap(178.5 + i / 200))
    # A comb: each minute one report at (44.0 N, 3.0 E), second 5, and one at (44.2 N, 3.2 E),
    # second 35. Every minute's box is [44.0, 44.2] x [3.0, 3.2]: a box over its north-east
    # corner holds the later reports (only raw reports, late in each minute, show it); a box
    # over its north-west corner touches every minute and holds no report.
    j = np.arange(240)
    start = base + int(timedelta(days=2, hours=3).total_seconds() * 1e6)
    out["comb"] = (
        start + (j // 2) * 60_000_000 + np.where(j % 2, 35_000_000, 5_000_000),
        np.where(j % 2, 44.2, 44.0),
        np.where(j % 2, 3.2, 3.0),
    )
    # A hook: from 06:00 on day 3 an L again (east along 43 N, then north along 5.5 E), its
    # hour's box holding (43.3 N, 5.2 E) and no minute near it; at 07:10 one report there.
    h = np.arange(120)
    start = base + int(timedelta(days=3, hours=6).total_seconds() * 1e6)
    out["hook"] = (
        np.append(start + h * 25_000_000, start + 70 * 60_000_000),
        np.append(np.where(h < 60, 43.0, 43.0 + (h - 60) / 120), 43.3),
        np.append(np.where(h < 60, 5.0 + h / 120, 5.5), 5.2),
    )
    rng = np.random.default_rng(15)
    for k in range(24):
        n = int(rng.integers(50, 600))
        steps = rng.integers(500_000, 240_000_000, n)
        first = base + int(rng.integers(0, int(SPAN.total_seconds() * 1e6) - int(steps.sum())))
        lon0 = float(rng.choice([7.0, 179.6, -179.6, 2.0]))
        out[f"r{k:02d}"] = (
            first + np.cumsum(steps),
            np.clip(46.0 + np.cumsum(rng.normal(0, 0.02, n)), -89.0, 89.0),
            _wrap(lon0 + np.cumsum(rng.normal(0, 0.02, n))),
        )
    return out


def store(url: str) -> None:
    with connect(url) as conn:
        with conn.cursor().copy(
            'COPY flight_data (flight_id, "timestamp", latitude, longitude) FROM STDIN'
        ) as copy:
            for flight, (micros, lat, lon) in tracks().items():
                for t, la, lo in zip(micros.tolist(), lat.tolist(), lon.tolist(), strict=True):
                    moment = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=t)
                    copy.write_row((flight, moment, la, lo))
        conn.commit()
    refresh(url, DAY0 - timedelta(days=1), DAY0 + SPAN + timedelta(days=1))


def listed(stub: Any, start: datetime, end: datetime, box: Box | None) -> set[tuple]:
    fields: dict[str, Any] = {"start_time": ts(start), "end_time": ts(end), "page_size": 1000}
    if box is not None:
        fields["bounding_box"] = pb.BoundingBox(
            min_latitude=box[0], min_longitude=box[1], max_latitude=box[2], max_longitude=box[3]
        )
    flights = stub.ListFlights(pb.ListFlightsRequest(**fields)).flights
    return {
        (
            f.flight_id,
            f.first_seen.ToDatetime(tzinfo=UTC),
            f.last_seen.ToDatetime(tzinfo=UTC),
            f.points,
        )
        for f in flights
    }


def raw(url: str, start: datetime, end: datetime, box: Box | None) -> set[tuple]:
    lat0, lon0, lat1, lon1 = box if box else (None, None, None, None)
    with connect(url) as conn:
        rows = conn.execute(
            RAW,
            {
                "start": start,
                "end": end,
                "min_lat": lat0,
                "max_lat": lat1,
                "min_lon": lon0,
                "max_lon": lon1,
            },
        ).fetchall()
    return {tuple(r) for r in rows}


micros = st.integers(0, int(SPAN.total_seconds() * 1e6) - 1)
lengths = st.one_of(
    st.integers(1, 60_000_000),  # under a minute
    st.integers(60_000_000, 6 * 3_600_000_000),  # minutes to hours
    st.integers(86_400_000_000, 3 * 86_400_000_000),  # whole days and their edges
)
WHOLE = [None, None, timedelta(hours=1), timedelta(days=1)]  # mostly windows of any length
latitudes = st.floats(-60, 60, allow_nan=False)
longitudes = st.floats(-180, 180, allow_nan=False)
boxes = st.one_of(
    st.none(),
    st.tuples(latitudes, longitudes, st.floats(0, 10), longitudes).map(
        lambda b: (b[0], b[1], min(b[0] + b[2], 90.0), b[3])  # min_lon > max_lon: across
    ),
    st.tuples(st.floats(44.5, 46.5), st.floats(6.5, 8.5), st.floats(0.01, 0.6)).map(
        lambda b: (b[0], b[1], b[0] + b[2], b[1] + b[2])  # small boxes about the L
    ),
)


def test_listings_equal_the_raw_reports_in_window_and_box(db_url: str) -> None:
    store(db_url)
    with serving(db_url) as server, stub_for(server.port) as stub:

        def check(start: datetime, end: datetime, box: Box | None) -> set[tuple]:
            have = listed(stub, start, end, box)
            assert have == raw(db_url, start, end, box), (start, end, box)
            return have

        # Named cases: a sub-minute window, an 8-second window without a report, a box the
        # L's bounding boxes cover but none of its reports, and boxes about the antimeridian.
        l_day = DAY0 + timedelta(days=1)
        assert check(
            l_day + timedelta(hours=10, seconds=30),
            l_day + timedelta(hours=10, minutes=30, seconds=15),
            None,
        )
        assert not check(l_day + timedelta(hours=3), l_day + timedelta(hours=3, seconds=8), None)
        corner = (45.6, 7.2, 45.8, 7.4)
        assert "ell" not in {f[0] for f in check(l_day, l_day + timedelta(days=1), corner)}
        assert "ell" in {
            f[0] for f in check(l_day, l_day + timedelta(days=1), (44.9, 7.5, 45.1, 7.6))
        }
        far = (-41.0, 100.0, -39.0, 101.0)
        assert "across" not in {f[0] for f in check(l_day, l_day + timedelta(days=2), far)}
        date_line = (-41.0, 179.9, -39.0, -179.9)
        assert "across" in {f[0] for f in check(l_day, l_day + timedelta(days=2), date_line)}

        @settings(
            max_examples=150,
            deadline=None,
            suppress_health_check=[HealthCheck.function_scoped_fixture],
        )
        @given(offset=micros, length=lengths, box=boxes, whole=st.sampled_from(WHOLE))
        def generated(offset: int, length: int, box: Box | None, whole: timedelta | None) -> None:
            start = DAY0 + timedelta(microseconds=offset)
            if whole is not None:  # exactly one UTC hour or day: its own statement answers
                start -= (start - DAY0) % whole
                length = whole // timedelta(microseconds=1)
            check(start, start + timedelta(microseconds=length), box)

        generated()


# Every part of a cut: its bounds' names, the unit its bounds fall on, and the next coarser
# unit, none of which it may hold whole (it would read more rows than that unit's part).
_PARTS = (
    ("start", "raw_end", None, timedelta(minutes=1)),
    ("minutes_start", "minutes_end", timedelta(minutes=1), timedelta(hours=1)),
    ("hours_start", "hours_end", timedelta(hours=1), timedelta(days=1)),
    ("days_start", "days_end", timedelta(days=1), None),
    ("late_hours_start", "late_hours_end", timedelta(hours=1), timedelta(days=1)),
    ("late_minutes_start", "late_minutes_end", timedelta(minutes=1), timedelta(hours=1)),
    ("late_raw_start", "end", None, timedelta(minutes=1)),
)


@settings(max_examples=500, deadline=None)
@given(
    offset=st.integers(0, 3 * 86_400_000_000),
    length=st.one_of(
        st.integers(1, 120_000_000),
        st.integers(1, 3 * 3_600_000_000),
        st.integers(1, 4 * 86_400_000_000),
        st.integers(1, 4 * 24).map(lambda hours: hours * 3_600_000_000),  # whole hours
    ),
    aligned=st.sampled_from([timedelta(0), timedelta(minutes=1), timedelta(hours=1)]),
    # About stored days, or against the first or last instant a datetime (and a request's
    # Timestamp) holds, where the next whole day is past what can be held.
    near=st.sampled_from(["data", "first", "last"]),
)
def test_a_window_is_cut_into_parts_that_cover_it_once(
    offset: int, length: int, aligned: timedelta, near: str
) -> None:
    span, shift = timedelta(microseconds=length), timedelta(microseconds=offset)
    lo = {
        "data": datetime(2024, 2, 29, tzinfo=UTC) + shift,
        "first": OPEN_START + shift,
        "last": max(OPEN_END - shift - span, OPEN_START),
    }[near]
    epoch = datetime(2024, 1, 1, tzinfo=UTC)
    if aligned:  # windows that start on a minute or an hour, as callers often ask
        lo -= min((lo - epoch) % aligned, lo - OPEN_START)
    hi = lo + span
    parts = window_parts(lo, hi)
    pieces = []
    for first, last, unit, coarser in _PARTS:
        a, b = parts[first], parts[last]
        assert a <= b, (first, a, b)
        if a == b:
            continue
        pieces.append((a, b))
        if unit is not None:
            assert (a - epoch) % unit == (b - epoch) % unit == timedelta(0), (first, a, b)
        if coarser is not None:
            # No whole coarser unit in it: the first one starting in it ends after it.
            assert (epoch - a) % coarser + coarser > b - a, (first, a, b)
    assert pieces[0][0] == lo and pieces[-1][1] == hi
    assert all(a[1] == b[0] for a, b in pairwise(pieces))  # in order, each instant in one part


def test_day_boxes_of_a_flight_across_the_antimeridian_cross_it(db_url: str) -> None:
    store(db_url)
    micros, _, lon = tracks()["across"]
    days = (micros // 86_400_000_000).astype(np.int64)
    with serving(db_url) as server, stub_for(server.port) as stub:
        across = stub.GetFlightSummary(pb.GetFlightSummaryRequest(flight_id="across")).days
        ell = stub.GetFlightSummary(pb.GetFlightSummaryRequest(flight_id="ell")).days
    assert len(across) == 2
    for day, summary in zip(np.unique(days), across, strict=True):
        plain = lon[days == day]
        east = np.where(plain < 0, plain + 360, plain)
        box = summary.bounding_box
        width = (box.max_longitude - box.min_longitude) % 360
        assert width == pytest.approx(min(np.ptp(plain), np.ptp(east)))  # the narrower span
        assert ((plain - box.min_longitude) % 360 <= width + 1e-9).all()  # holds every report
        assert (box.min_latitude, box.max_latitude) == (-40.0, -40.0)
    assert across[1].bounding_box.min_longitude > across[1].bounding_box.max_longitude
    (only,) = ell
    assert (only.bounding_box.min_longitude, only.bounding_box.max_longitude) == (7.0, 8.0)


def _pages(reads: FlightReads, query: FlightQuery, size: int) -> list[FlightListing]:
    """Every page of a listing, each after the previous page's last row."""
    rows: list[FlightListing] = []
    while True:
        after = (rows[-1].first_seen, rows[-1].flight_id) if rows else None
        page = reads.flights(query, after=after, limit=size)
        rows += page
        if len(page) < size:
            return rows


@pytest.mark.parametrize("unit", [timedelta(days=1), timedelta(hours=1)], ids=["day", "hour"])
@pytest.mark.parametrize("cleaned", [False, True], ids=["raw", "raw dropped before day 2"])
def test_a_whole_day_or_hour_pages_as_the_general_statement_lists_it(
    db_url: str, cleaned: bool, unit: timedelta
) -> None:
    """One whole UTC day or hour is answered by its own statement (a walk of the bucket's
    index): page by page it lists what the statement for any window lists, in the same order;
    also where the cleaner dropped the raw points (a box touching a bucket's box lists the
    flight)."""
    store(db_url)
    if cleaned:
        horizon = (DAY0 + timedelta(days=2)).date()
        with connect(db_url, autocommit=True) as conn:
            clean(conn, horizon + timedelta(days=90), RetentionPolicy())
            assert conn.execute("SELECT min(timestamp) FROM flight_data").fetchone() >= (
                DAY0 + timedelta(days=2),
            )
    general = load_sql("api/list_flights")
    with connect(db_url) as conn:
        reads = FlightReads(conn)

        # The buckets of the L (day 1, 10:00 to 10:49), the comb (day 2, 03:00 to 05:00) and
        # the hook (day 3, 06:00 to 07:10).
        ell, comb, hook = (1, 2, 3) if unit == timedelta(days=1) else (34, 51, 78)

        @settings(
            max_examples=60,
            deadline=None,
            suppress_health_check=[HealthCheck.function_scoped_fixture],
        )
        @given(bucket=st.integers(-1, SPAN // unit), box=boxes, size=st.integers(1, 7))
        # The L's box touches this box, none of its reports is inside: listed only where its
        # raw reports are gone.
        @example(bucket=ell, box=(45.6, 7.2, 45.8, 7.4), size=1)
        # The comb's minutes touch these boxes, none lies inside: its raw reports decide.
        @example(bucket=comb, box=(44.1, 3.15, 44.3, 3.25), size=1)
        @example(bucket=comb, box=(44.1, 2.9, 44.3, 3.1), size=1)
        # The hook's box of 06:00 holds this box, only its report of 07:10 lies inside.
        @example(bucket=hook, box=(43.2, 5.1, 43.4, 5.3), size=1)
        def generated(bucket: int, box: Box | None, size: int) -> None:
            start = DAY0 + bucket * unit
            end = start + unit
            query = FlightQuery(window=Window(start, end), box=BoundingBox(*box) if box else None)
            params = listing_parameters(query, after=None, limit=10_000)
            with conn.cursor(row_factory=class_row(FlightListing)) as cur:
                expected = cur.execute(general, params).fetchall()
            assert _pages(reads, query, size) == expected, (start, box, size)

        generated()
