"""OpenSky state vectors: the reader, flight identification, and real days through the pipeline.

The real files are the two bundled OpenSky days (samples/opensky, see its README in the
shared data): 2021-10-07 around Paris (3 hours, 284,505 rows, 213 aircraft, 236 callsigns)
and 2018-08-01 over Switzerland (17 hours, 139,098 rows, 842 aircraft, 1,243 callsigns).
"""

from __future__ import annotations

import gzip
import io
import math
import re
import tarfile
from collections.abc import Iterable, Iterator
from datetime import UTC, date, datetime
from decimal import ROUND_FLOOR, Decimal
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

from pipelines.cli.ingest import ingest
from pipelines.drops.batches import BATCH_COLUMNS, DropBatch, frame_from_columns
from pipelines.drops.files import discover_drops, read_drop
from pipelines.drops.opensky import EARLIEST_TIME, HEADER, LATEST_TIME, read_opensky
from pipelines.flights.identity import FlightIdentifier, FlightRule, flight_id
from pipelines.flights.reports import PositionReports
from pipelines.ingest import ingest_partition
from pipelines.warehouse.connection import connect
from tests.conftest import DATA

REAL = DATA / "opensky"
PARIS, SWISS = date(2021, 10, 7), date(2018, 8, 1)
HEADER_LINE = ",".join(HEADER)
DEFAULT_RULE = FlightRule()
# Real rows (2021-10-07-12, lines 2 to 5): airborne, then on the ground without speed/altitude.
REAL_ROWS = [
    "1633608001,398564,48.363399,1.413478,198.0609,16.2721,-13.0048,AFR9455 ,False,False,"
    "False,1054,6172.2,,1633608001.000,1633608001.000",
    "1633608001,39a415,48.95438,2.388659,79.7388,248.0615,13.0048,VLJ681N ,False,False,False,"
    "7645,624.84,,1633608001.000,1633608001.000",
    "1633608002,398564,48.368546,1.415687,197.5465,16.3139,-13.0048,AFR9455 ,False,False,"
    "False,1054,6149.34,,1633608002.000,1633608002.000",
    "1633608002,3964f5,48.735061,2.360398,,,,TVF90WP ,True,False,False,7637,,,"
    "1633608002.000,1633608002.000",
]


# -- helpers -------------------------------------------------------------------------------
def csv_bytes(lines: Iterable[str], header: str = HEADER_LINE) -> bytes:
    return ("\n".join([header, *lines]) + "\n").encode()


def read(
    data: bytes, name: str = "states_2021-10-07-12.csv", batch_rows: int = 100_000
) -> list[DropBatch]:
    return list(read_opensky(io.BytesIO(data), name, batch_rows))


def frames(batches: list[DropBatch]) -> pd.DataFrame:
    return pd.concat([b.frame for b in batches], ignore_index=True)


def day_frames(day: date, root: Path = REAL, batch_rows: int = 100_000) -> Iterator[pd.DataFrame]:
    for drop in discover_drops(root, day):
        for batch in read_drop(drop, root, batch_rows):
            assert not batch.rejected, batch.rejected[:3]
            yield batch.frame


def data_lines(path: Path) -> int:
    with gzip.open(path, "rb") as fh:
        return sum(1 for _ in fh) - 1


def reference_ids(
    rows: Iterable[tuple[str, float, str | None, bool]], rule: FlightRule = DEFAULT_RULE
) -> list[str]:
    """The identification rule row by row, as docs/opensky.md states it: the specification
    the vectorised identifier is held to."""
    gap, landed = rule.gap.total_seconds(), rule.landed.total_seconds()
    flicker = rule.flicker.total_seconds()
    aircraft: dict[str, dict] = {}
    out = []
    for icao24, t, callsign, ground in rows:
        a = aircraft.get(icao24)
        start = False
        if a is None or t - a["last"] > gap:  # rule 1
            start = True
            a = aircraft[icao24] = {
                "last": t,
                "known": None,
                "in_run": ground,
                "run_start": t,
                "has_start": ground,
                "air_since": None if ground else t,
            }
        else:
            change = callsign is not None and a["known"] is not None and callsign != a["known"]
            if ground:  # rule 3
                flickered = a["air_since"] is not None and t - a["air_since"] < flicker
                if not (a["in_run"] and (a["air_since"] is None or flickered)):
                    a.update(in_run=True, run_start=t, has_start=False)
                a["air_since"] = None
                if not a["has_start"] and (change or t - a["run_start"] >= landed):
                    start = a["has_start"] = True
            else:  # rule 2
                if a["air_since"] is None:
                    a["air_since"] = t
                if change:
                    start = a["has_start"] = True
        if start:
            a["id"] = flight_id(icao24, math.floor(t))
        if callsign is not None:
            a["known"] = callsign
        a["last"] = max(a["last"], t)
        out.append(a["id"])
    return out


def rows_of(frame: pd.DataFrame) -> list[tuple[str, float, str | None, bool]]:
    return list(
        zip(
            frame["icao24"].astype(object),
            pd.DatetimeIndex(frame["timestamp"]).asi8 / 1e9,
            frame["callsign"].astype(object).where(frame["callsign"].notna(), None),
            frame["on_ground"].fillna(False).astype(bool),
            strict=True,
        )
    )


def identify(frame: pd.DataFrame, batch_rows: int, rule: FlightRule = DEFAULT_RULE) -> list[str]:
    identifier = FlightIdentifier(rule)
    ids: list[str] = []
    for start in range(0, len(frame), batch_rows):
        piece = frame.iloc[start : start + batch_rows].copy()
        ids += identifier.assign(piece)["flight_id"].tolist()
    return ids


def positions(
    track: Iterable[tuple[float, str | None, bool | None]], icao24: str = "4b1814"
) -> pd.DataFrame:
    """A small batch frame of one aircraft: (seconds after 2021-10-07 12:00, callsign, ground)."""
    base = 1_633_608_000
    rows = list(track)
    frame = frame_from_columns(
        {
            "record": list(range(2, len(rows) + 2)),
            "raw_timestamp": [str(base + int(t)) for t, _, _ in rows],
            "latitude": [47.0] * len(rows),
            "longitude": [8.0] * len(rows),
            "icao24": [icao24] * len(rows),
            "callsign": [c for _, c, _ in rows],
            "on_ground": [g for _, _, g in rows],
        }
    )
    return frame


def flights_of(frame: pd.DataFrame, rule: FlightRule = DEFAULT_RULE) -> list[int]:
    """The minute at which each flight starts."""
    ids = FlightIdentifier(rule).assign(frame.copy())["flight_id"]
    starts = frame["timestamp"].groupby(ids.to_numpy(), sort=False).min()
    base = pd.Timestamp("2021-10-07T12:00:00Z")
    return sorted(int((t - base).total_seconds() // 60) for t in starts)


def every(seconds: int, start: float, end: float) -> np.ndarray:
    return np.arange(start, end, seconds, dtype=float)


# -- the reader ----------------------------------------------------------------------------
def test_units_nulls_and_extra_columns_of_real_rows() -> None:
    [batch] = read(csv_bytes(REAL_ROWS))
    frame = batch.frame
    assert list(frame.columns) == list(BATCH_COLUMNS)
    empty = frame_from_columns({"record": [], "raw_timestamp": []})
    assert frame.dtypes.to_dict() == empty.dtypes.to_dict()
    first = frame.iloc[0]
    assert first["timestamp"] == pd.Timestamp("2021-10-07T12:00:01Z")
    assert first["raw_timestamp"] == "1633608001.000"  # lastposupdate: the position's time
    assert (first["latitude"], first["longitude"]) == (48.363399, 1.413478)
    assert first["altitude"] == 20_250  # 6172.2 m
    assert first["airspeed"] == 385  # 198.0609 m/s
    assert first["vertical_rate"] == -2_560  # -13.0048 m/s
    assert first["track"] == 16.2721
    assert not first["on_ground"]
    assert (first["squawk"], first["icao24"], first["callsign"], first["flight_number"]) == (
        "1054",
        "398564",
        "AFR9455",
        "AFR9455",
    )
    assert pd.isna(first["flight_id"]) and pd.isna(first["airline"])
    assert frame["record"].tolist() == [2, 3, 4, 5]
    parked = frame.iloc[3]
    assert parked["on_ground"]
    for column in ("altitude", "airspeed", "track", "vertical_rate"):
        assert pd.isna(parked[column])


@settings(max_examples=300, deadline=None)
@given(
    velocity=st.floats(0, 400, allow_nan=False),
    vertrate=st.floats(-100, 100, allow_nan=False),
    baroaltitude=st.floats(-500, 20_000, allow_nan=False),
)
def test_units_are_converted_exactly(velocity: float, vertrate: float, baroaltitude: float) -> None:
    row = (
        f"1633608001,398564,48.3634,1.4134,{velocity!r},16.2,{vertrate!r},AFR9455 ,False,"
        f"False,False,1054,{baroaltitude!r},,1633608001.000,1633608001.000"
    )
    [batch] = read(csv_bytes([row]))
    first = batch.frame.iloc[0]
    assert first["airspeed"] == round(velocity * 3600 / 1852)  # 1 kt = 1852 m/h
    assert first["altitude"] == round(baroaltitude / 0.3048)
    assert first["vertical_rate"] == round(vertrate * 60 / 0.3048)


def test_knots_are_not_rounded_through_an_approximate_factor() -> None:
    # 100.49998 kt exactly; through 0.514444 m/s per knot it would come out as 100.50002.
    velocity = 100.49998 * 1852 / 3600
    row = REAL_ROWS[0].replace("198.0609", repr(velocity))
    [batch] = read(csv_bytes([row]))
    assert batch.frame.iloc[0]["airspeed"] == 100


def test_bad_rows_are_rejected_with_line_reason_and_text_and_the_rest_keep_their_lines() -> None:
    good = REAL_ROWS[0]
    lines = [
        good,  # 2
        good.replace("48.363399,1.413478", ","),  # 3 no position
        "," + good.split(",", 1)[1],  # 4 no time
        good.replace("398564", "XYZ"),  # 5 bad icao24
        good.replace("398564", ""),  # 6 no icao24
        "1633608001,398564,48.3",  # 7 3 fields
        good.replace("198.0609", "fast"),  # 8 not a number
        good.replace(",False,False,False,", ",maybe,False,False,"),  # 9 not a flag
        "",  # 10 blank line
        good.replace("1633608001,398564", "12,398564"),  # 11 before 2000
        REAL_ROWS[3],  # 12
    ]
    batches = read(csv_bytes(lines))
    assert sum(b.rows_read for b in batches) == len(lines)
    kept = frames(batches)
    assert kept["record"].tolist() == [2, 12]
    rejected = {r.line: r for b in batches for r in b.rejected}
    reasons = {line: r.reason for line, r in rejected.items()}
    assert reasons == {
        3: "position missing (lat/lon empty)",
        4: "time is missing",
        5: "icao24 is not six hex digits",
        6: "icao24 is missing",
        7: "expected 16 fields, found 3",
        8: "velocity is not a number: 'fast'",
        9: "onground is not True or False: 'maybe'",
        10: "time is missing; icao24 is missing; position missing (lat/lon empty)",
        11: "time is before 2000-01-01",
    }
    assert rejected[7].raw_record == "1633608001,398564,48.3"
    assert rejected[8].raw_record == lines[6]
    offset = len(HEADER_LINE) + 1 + sum(len(line) + 1 for line in lines[:5])
    assert rejected[7].byte_offset == offset
    assert all(r.source_file == "states_2021-10-07-12.csv" for r in rejected.values())


def test_quotes_are_data_and_bytes_that_are_not_text_reject_their_row_only() -> None:
    good = REAL_ROWS[0].encode()
    data = (
        b"\n".join(
            [
                HEADER_LINE.encode(),
                good.replace(b"AFR9455 ", b'"AFR9455"'),
                good.replace(b"AFR9455", b"AF\xff9455"),
                good.replace(b"AFR9455 ", b'"AF,R"'),
                good,
            ]
        )
        + b"\n"
    )
    batches = read(data)
    kept = frames(batches)
    assert kept["record"].tolist() == [2, 5]
    assert kept["callsign"].tolist() == ['"AFR9455"', "AFR9455"]
    assert [(r.line, r.reason) for b in batches for r in b.rejected] == [
        (3, "callsign is not valid UTF-8"),
        (4, "expected 16 fields, found 17"),
    ]


@settings(max_examples=200, deadline=None)
@given(
    damaged=st.lists(
        st.binary(min_size=1, max_size=60).filter(lambda b: b"\n" not in b and b"\r" not in b),
        min_size=1,
        max_size=4,
    )
)
def test_lines_of_any_bytes_cost_their_own_row_only(damaged: list[bytes]) -> None:
    """Lines of random bytes (misshapen, not UTF-8) between real rows: every real row is
    kept at its line, every damaged one is kept or rejected at its own line, and nothing
    fails inside Arrow's callbacks (an exception there is swallowed and fails this test)."""
    good = [row.encode() for row in REAL_ROWS[:2]]
    lines = [good[0], *damaged, good[1]]
    batches = read(b"\n".join([HEADER_LINE.encode(), *lines]) + b"\n")
    assert sum(b.rows_read for b in batches) == len(lines)
    kept = frames(batches)["record"].tolist()
    rejected = [r.line for b in batches for r in b.rejected]
    assert kept[0] == 2 and kept[-1] == len(lines) + 1
    assert sorted(kept + rejected) == list(range(2, len(lines) + 2))


# A `lastposupdate` as a producer may write one: empty or blank, a time as OpenSky writes it
# or in any float spelling, a number out of range or not finite, or any text at all.
_DECIMAL = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")
_POSITION_TIMES = st.one_of(
    st.sampled_from(["", " ", "  \t"]),
    st.floats(EARLIEST_TIME, LATEST_TIME, exclude_max=True).flatmap(
        lambda t: st.sampled_from([f"{t:.3f}", repr(t), f"{t:e}", f" {t:.0f} ", f"+{t:.6f}"])
    ),
    st.floats().map(repr),
    st.text(st.characters(exclude_characters=',"\n\r', exclude_categories=["Cs"]), max_size=12),
)


@settings(max_examples=300, deadline=None)
@given(values=st.lists(_POSITION_TIMES, min_size=1, max_size=6))
def test_a_position_time_is_lastposupdate_time_where_empty_and_else_the_row_is_rejected(
    values: list[str],
) -> None:
    """`time` in place of a `lastposupdate` that is given but no time would date a repeated
    position anew (a spurious point): such a row is rejected, naming the field; an empty one
    takes `time`. Decided per row, whatever the batch's other rows hold."""
    row = REAL_ROWS[0].split(",")
    lines = [",".join([*row[:14], value, *row[15:]]) for value in values]
    batches = read(csv_bytes(lines))
    kept = frames(batches).set_index("record")
    rejected = {r.line: r.reason for b in batches for r in b.rejected}
    for line, value in enumerate(values, start=2):
        text = value.strip()
        seconds = Decimal(text) if _DECIMAL.fullmatch(text) else Decimal("NaN")
        if not text:
            assert kept.at[line, "raw_timestamp"] == row[0], value
            assert kept.at[line, "timestamp"] == pd.Timestamp(int(row[0]), unit="s", tz=UTC)
        elif not seconds.is_nan() and EARLIEST_TIME <= seconds < LATEST_TIME:
            assert kept.at[line, "raw_timestamp"] == text, value
            # Exactly, to the microsecond the database keeps (finer digits dropped).
            micros = int((seconds * 10**6).to_integral_value(ROUND_FLOOR))
            assert kept.at[line, "timestamp"] == pd.Timestamp(micros, unit="us", tz=UTC), value
        else:
            assert line not in kept.index, value
            assert rejected[line].startswith("lastposupdate is "), (value, rejected[line])


# A field's text as producers write it: numbers in any spelling, padded or not, not finite,
# out of range, flags, blanks, any text.
_FIELD_TEXTS = st.one_of(
    st.floats().flatmap(
        lambda x: st.sampled_from([repr(x), f"{x:.6f}", f"{x:e}", f" {x!r}", f"{x!r}\t"])
    ),
    st.sampled_from(["", " ", "nan", "-NaN", "inf", "+Infinity", "1e400", "True", "false", "1"]),
    st.text(st.characters(exclude_characters=',"\n\r', exclude_categories=["Cs"]), max_size=12),
)
_PARSED = [name for name in HEADER if name not in ("icao24", "callsign", "squawk")]


def _outcome(batches: list[DropBatch], line: int) -> tuple[object, ...]:
    """What became of one line: its row's values (floats by their bits) or its reasons."""
    reasons = [r.reason for b in batches for r in b.rejected if r.line == line]
    rows = frames(batches)
    row = rows[rows["record"] == line]
    values = tuple(
        "NA" if pd.isna(v) else (float(v).hex() if isinstance(v, float) else str(v))
        for v in (row.iloc[0] if len(row) else [])
    )
    return values, reasons


@settings(max_examples=400, deadline=None)
@given(column=st.sampled_from(_PARSED), value=_FIELD_TEXTS)
def test_a_value_reads_the_same_whatever_its_neighbours(column: str, value: str) -> None:
    """A block with one value Arrow cannot convert is read again as text: every value of it
    must then read exactly as in a clean block (the same bits, the same nulls, the same
    reasons), or a row's stored point would depend on the rows beside it."""
    fields = REAL_ROWS[0].split(",")
    fields[HEADER.index(column)] = value
    line = ",".join(fields)
    garbage = REAL_ROWS[1].replace("79.7388", "fast")
    alone = _outcome(read(csv_bytes([line])), 2)
    beside = _outcome(read(csv_bytes([line, garbage])), 2)
    assert alone == beside, (column, value)


def test_a_file_that_is_not_opensky_is_rejected_whole() -> None:
    [batch] = read(b"flight_id,latitude,longitude\nabc,1,2\n")
    assert batch.frame.empty
    [reject] = batch.rejected
    assert reject.reason.startswith("not an OpenSky state-vector CSV: header 'flight_id,lat")
    assert "lacks time, icao24" in reject.reason
    # Columns in another order are fine: fields are matched by name.
    names = list(HEADER)
    names[0], names[1] = names[1], names[0]
    row = REAL_ROWS[0].split(",")
    row[0], row[1] = row[1], row[0]
    [batch] = read(csv_bytes([",".join(row)], header=",".join(names)))
    assert batch.frame["icao24"].tolist() == ["398564"] and not batch.rejected


def test_archives_as_published_and_through_the_landing_zone(tmp_path: Path) -> None:
    day = tmp_path / "2021-10-07"
    day.mkdir()
    archive = day / "states_2021-10-07-12.csv.tar"
    members = {
        "states_2021-10-07-12.csv.gz": gzip.compress(csv_bytes(REAL_ROWS[:2])),
        "README.txt": b"OpenSky Network state vectors\n",
        "extra/states_part.csv": csv_bytes([*REAL_ROWS[2:], "1,2"]),
        "notes.json": b"{}",
    }
    with tarfile.open(archive, "w") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    batches = list(read_drop(discover_drops(tmp_path, date(2021, 10, 7))[0], tmp_path))
    assert sum(b.rows_read for b in batches) == 4 + 1 + 1
    assert frames(batches)["icao24"].tolist() == ["398564", "39a415", "398564", "3964f5"]
    rejected = [(r.source_file, r.line, r.reason) for b in batches for r in b.rejected]
    name = "2021-10-07/states_2021-10-07-12.csv.tar"
    assert rejected == [
        (f"{name}/extra/states_part.csv", 4, "expected 16 fields, found 2"),
        (f"{name}/notes.json", None, "archive member is not a states CSV"),
    ]
    # A truncated archive: what was read stays, the rest is one reject.
    cut = day / "states_2021-10-07-13.csv.tar"
    cut.write_bytes(archive.read_bytes()[:700])
    drop = next(d for d in discover_drops(tmp_path, date(2021, 10, 7)) if d.path == cut)
    reasons = [r.reason for b in read_drop(drop, tmp_path) for r in b.rejected]
    assert len(reasons) == 1 and "unreadable" in reasons[0]


def test_real_files_stream_in_bounded_batches_whatever_their_size() -> None:
    path = REAL / "2021-10-07" / "states_2021-10-07-12.csv.gz"
    data = gzip.decompress(path.read_bytes())
    whole = read(data)
    small = read(data, batch_rows=7_919)
    assert all(len(b.frame) <= 7_919 for b in small) and len(small) > 10
    a, b = frames(whole), frames(small)
    assert len(a) == data_lines(path) == 90_371
    assert a["record"].tolist() == list(range(2, len(a) + 2))
    pd.testing.assert_frame_equal(a, b)
    assert a["altitude"].isna().sum() > 0 and a["airspeed"].isna().sum() > 0


# -- flight identification -----------------------------------------------------------------
def test_ids_are_icao24_and_the_first_second_in_base_36() -> None:
    assert flight_id("398564", 1_633_608_001) == "398564bcz5c1"
    assert int("bcz5c1", 36) + 946_684_800 == 1_633_608_001
    assert flight_id("abcdef", 946_684_800) == "abcdef000000"
    assert len(flight_id("abcdef", 3_000_000_000)) == 12  # 2065
    with pytest.raises(ValueError, match="2000"):
        flight_id("abcdef", 0)


def test_a_gap_longer_than_the_threshold_starts_a_flight() -> None:
    track = [(t, "SWR12", False) for t in [*every(60, 0, 600), 540 + 1800, 540 + 1800 + 1801]]
    assert flights_of(positions(track)) == [0, 69]  # 30 min exactly is no gap; 30 min 1 s is
    assert flights_of(positions(track), FlightRule(gap=pd.Timedelta(minutes=20))) == [0, 39, 69]


def test_a_callsign_change_starts_a_flight_an_empty_callsign_does_not() -> None:
    track = (
        [(t, None, False) for t in every(60, 0, 300)]
        + [(t, "SWR12", False) for t in every(60, 300, 600)]
        + [(t, None, False) for t in every(60, 600, 900)]
        + [(t, "SWR13", False) for t in every(60, 900, 1200)]
    )
    assert flights_of(positions(track)) == [0, 15]
    # After a gap the callsign in force is forgotten: unknown, then a new one, is one flight.
    later = [(t, None, False) for t in every(60, 4000, 4300)] + [(4300, "EZS9", False)]
    assert flights_of(positions(track + later)) == [0, 15, 66]


def test_a_landing_starts_a_flight_once_the_aircraft_has_been_on_the_ground_long_enough() -> None:
    arrive = [(t, "SWR12", False) for t in every(10, 0, 600)]
    parked = [(t, "SWR12", True) for t in every(10, 600, 600 + 25 * 60)]
    leave = [(t, "SWR12", False) for t in every(10, 2100, 2700)]
    assert flights_of(positions(arrive + parked + leave)) == [0, 30]  # landed 10 + 20 min
    short = [(t, "SWR12", True) for t in every(10, 600, 600 + 15 * 60)]
    assert flights_of(positions(arrive + short + leave)) == [0]  # a long taxi-in, not a stop
    assert flights_of(
        positions(arrive + parked + leave), FlightRule(landed=pd.Timedelta(minutes=10))
    ) == [0, 20]


def test_flicker_callsign_change_at_the_gate_and_taxi_out_follow_the_rule() -> None:
    # First seen on the ground, the on-ground flag flickering (5 s "airborne") during a
    # 25-minute taxi-out: one ground run, in which the flight started.
    taxi = [(t, "SWR11", t % 300 != 5) for t in every(5, 0, 1500)]
    leave = [(t, "SWR11", False) for t in every(10, 1500, 2100)]
    assert flights_of(positions(taxi + leave)) == [0]
    # Two minutes airborne is no flicker: the aircraft landed again (a circuit).
    circuit = (
        [(t, "SWR11", True) for t in every(10, 0, 600)]
        + [(t, "SWR11", False) for t in every(10, 600, 720)]
        + [(t, "SWR11", True) for t in every(10, 720, 2100)]
    )
    assert flights_of(positions(circuit)) == [0, 32]
    arrive = [(t, "SWR12", False) for t in every(10, 0, 600)]
    # The callsign changes at the gate 5 min after landing: one new flight, not two.
    gate = [(t, "SWR12", True) for t in every(10, 600, 900)] + [
        (t, "SWR13", True) for t in every(10, 900, 2700)
    ]
    assert flights_of(positions(arrive + gate)) == [0, 15]
    # ... and 25 min after landing: the landing started the flight, the change joins it.
    late = [(t, "SWR12", True) for t in every(10, 600, 2100)] + [
        (t, "SWR13", True) for t in every(10, 2100, 2700)
    ]
    assert flights_of(positions(arrive + late)) == [0, 30]
    # First seen on the ground: a 25-minute taxi-out is the start of its flight.
    out = [(t, "SWR14", True) for t in every(10, 0, 1500)] + [
        (t, "SWR14", False) for t in every(10, 1500, 1800)
    ]
    assert flights_of(positions(out)) == [0]
    # A null on-ground flag counts as airborne; a null callsign as unknown.
    unknown = [(t, None, None) for t in every(10, 0, 600)]
    assert flights_of(positions(unknown)) == [0]


def test_every_row_with_an_aircraft_gets_an_id_and_flights_never_mix_aircraft() -> None:
    a = positions([(t, "AFR1", False) for t in every(10, 0, 300)], icao24="398564")
    b = positions([(t, "AFR1", False) for t in every(10, 0, 300)], icao24="39a415")
    frame = pd.concat([a, b], ignore_index=True).sort_values("timestamp", kind="stable")
    frame = frame.reset_index(drop=True)
    frame.loc[frame.index[-3:], "icao24"] = pd.NA
    ids = FlightIdentifier().assign(frame.copy())
    assert ids["flight_id"].isna().sum() == 3
    named = ids.dropna(subset=["flight_id"])
    assert named.groupby("flight_id")["icao24"].nunique().max() == 1
    assert set(named["flight_id"]) == {"398564bcz5c0", "39a415bcz5c0"}


@pytest.mark.parametrize("day", [PARIS, SWISS])
def test_real_days_match_the_row_by_row_rule_at_every_batch_size(day: date) -> None:
    frame = pd.concat(day_frames(day), ignore_index=True)
    expected = reference_ids(rows_of(frame))
    for batch_rows in (len(frame), 50_000, 7_919):
        assert identify(frame, batch_rows) == expected, batch_rows
    pairs = frame.groupby(["icao24", "callsign"]).ngroups
    flights = pd.Series(expected).groupby(frame["icao24"].to_numpy()).nunique()
    # Every (aircraft, callsign) pair is at least one flight (no change of callsign within
    # a flight here); extra flights need a gap or a landing: bounded by the gaps over 30 min.
    gaps = (
        pd.DatetimeIndex(frame["timestamp"]).to_series().groupby(frame["icao24"].to_numpy()).diff()
        > pd.Timedelta(minutes=30)
    ).sum()
    assert pairs <= flights.sum() <= pairs + gaps
    assert flights.sum() == {PARIS: 238, SWISS: 1244}[day]


_ROW = st.tuples(
    st.sampled_from(["aaaaaa", "bbbbbb"]),
    st.integers(min_value=1, max_value=900),  # seconds since the last row
    st.sampled_from([None, "ONE", "TWO"]),
    st.sampled_from([True, False, False, None]),
)


@settings(max_examples=60, deadline=None)
@given(rows=st.lists(_ROW, min_size=1, max_size=80), batch=st.integers(1, 30))
def test_the_identifier_is_the_rule_whatever_the_batches(rows: list, batch: int) -> None:
    t = 1_633_608_000.0
    track = []
    for icao24, step, callsign, ground in rows:
        t += step
        track.append((icao24, t, callsign, ground))
    frame = frame_from_columns(
        {
            "record": list(range(len(track))),
            "raw_timestamp": [str(int(r[1])) for r in track],
            "icao24": [r[0] for r in track],
            "callsign": [r[2] for r in track],
            "on_ground": [r[3] for r in track],
        }
    )
    rule = FlightRule(gap=pd.Timedelta(minutes=10), landed=pd.Timedelta(minutes=5))
    expected = reference_ids([(i, s, c, bool(g)) for i, s, c, g in track], rule)
    assert identify(frame, batch, rule) == expected


# -- real days through the pipeline --------------------------------------------------------
def snapshot(url: str) -> dict[str, list]:
    """Stored rows with their row versions (xmin), the quarantine and the ledger counts."""
    with connect(url) as conn:
        return {
            "data": conn.execute(
                "SELECT xmin::text, * FROM flight_data ORDER BY flight_id, timestamp"
            ).fetchall(),
            "meta": conn.execute(
                "SELECT xmin::text, * FROM flight_metadata ORDER BY flight_id"
            ).fetchall(),
            "quarantine": conn.execute(
                "SELECT partition_day, source_file, line, byte_offset, reason, raw_record "
                "FROM quarantine ORDER BY 1, 2, 3"
            ).fetchall(),
            "ledger": conn.execute(
                "SELECT partition_day, files, rows_read, rows_stored, rows_quarantined, "
                "duplicates, min_timestamp, max_timestamp FROM partition_loads "
                "ORDER BY 1"
            ).fetchall(),
        }


@pytest.fixture
def cli_env(apache_url: str, flights_env: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """`flights ingest` in-process on the test database, Dagster's storage left to its default
    (the instance in DAGSTER_HOME)."""
    monkeypatch.setenv("FLIGHTS_DATABASE_URL", apache_url)
    return flights_env


@pytest.mark.apache
def test_both_real_days_through_flights_ingest_reconcile_and_a_second_run_changes_nothing(
    apache_url: str, cli_env: Path
) -> None:
    runner = CliRunner()

    def run(day: date) -> None:
        result = runner.invoke(ingest, ["--from", day.isoformat(), "--landing", str(REAL)])
        assert result.exit_code == 0, result.output
        assert "FAILED" not in result.output

    for day in (PARIS, SWISS):
        run(day)
    first = snapshot(apache_url)
    lines = {
        day: sum(data_lines(p) for p in (REAL / day.isoformat()).glob("*.csv.gz"))
        for day in (PARIS, SWISS)
    }
    ledger = {row[0]: row[1:6] for row in first["ledger"]}
    # The samples' lastposupdate was rewritten to time; their stale positions still show as
    # an aircraft off the ground at exactly its previous place: repeats, counted as duplicates.
    assert ledger == {
        PARIS: (3, lines[PARIS], 268_327, 4, 16_174),
        SWISS: (17, lines[SWISS], 138_857, 0, 241),
    }
    assert len(first["data"]) == 268_327 + 138_857
    assert len(first["quarantine"]) == 4
    for _, source, line, _, reason, raw in first["quarantine"]:
        assert source.startswith("2021-10-07/states_2021-10-07-1") and line > 1
        assert reason.startswith("altitude: in_range(-2000, 80000)") and raw
    with connect(apache_url) as conn:
        per_day = dict(
            conn.execute(
                "SELECT (timestamp AT TIME ZONE 'UTC')::date, count(DISTINCT flight_id) "
                "FROM flight_data GROUP BY 1"
            ).fetchall()
        )
        mixed = conn.execute(
            "SELECT count(*) FROM flight_data d LEFT JOIN flight_metadata m USING (flight_id) "
            "WHERE m.icao24 IS DISTINCT FROM left(d.flight_id, 6)"
        ).fetchone()
        meta = conn.execute(
            "SELECT count(*), count(*) FILTER (WHERE flight_number = callsign "
            "AND icao24 = left(flight_id, 6)) FROM flight_metadata"
        ).fetchone()
    assert per_day == {PARIS: 238, SWISS: 1244}
    assert mixed == (0,)  # every point's flight belongs to the aircraft in its id
    assert meta == (238 + 1244, 238 + 1244)

    for day in (PARIS, SWISS):
        run(day)
    assert snapshot(apache_url) == first


def shifted_day_set(root: Path) -> dict[date, int]:
    """A multi-day set the project has never seen, from real rows: 2021-10-07 12:00-15:00
    moved to 2023-05-14 22:00 - 2023-05-15 01:00, written as OpenSky's hourly files (gzipped,
    plain, and the published .csv.tar) into the two day folders. Returns rows per day."""
    shift = int(
        (
            datetime(2023, 5, 14, 22, tzinfo=UTC) - datetime(2021, 10, 7, 12, tzinfo=UTC)
        ).total_seconds()
    )
    counts: dict[date, int] = {}
    for i, path in enumerate(sorted((REAL / "2021-10-07").glob("*.csv.gz"))):
        table = pd.read_csv(path, dtype=str, keep_default_na=False)
        for column in ("time", "lastposupdate", "lastcontact"):
            seconds = table[column].astype(float) + shift
            table[column] = seconds.map("{:.0f}".format if column == "time" else "{:.3f}".format)
        hour = datetime.fromtimestamp(int(table["time"].iloc[0]), UTC)
        folder = root / hour.date().isoformat()
        folder.mkdir(parents=True, exist_ok=True)
        name = f"states_{hour:%Y-%m-%d-%H}.csv"
        data = table.to_csv(index=False).encode()
        counts[hour.date()] = counts.get(hour.date(), 0) + len(table)
        if i == 0:
            (folder / f"{name}.gz").write_bytes(gzip.compress(data))
        elif i == 1:
            (folder / name).write_bytes(data)
        else:
            with tarfile.open(folder / f"{name}.tar", "w") as tar:
                for member, content in (
                    (f"{name}.gz", gzip.compress(data)),
                    ("README.txt", b"OpenSky Network\n"),
                ):
                    info = tarfile.TarInfo(member)
                    info.size = len(content)
                    tar.addfile(info, io.BytesIO(content))
    return counts


def stored_ids(url: str) -> pd.DataFrame:
    with connect(url) as conn:
        rows = conn.execute(
            "SELECT m.icao24, d.timestamp, d.flight_id FROM flight_data d "
            "JOIN flight_metadata m USING (flight_id) ORDER BY 1, 2"
        ).fetchall()
    frame = pd.DataFrame(rows, columns=["icao24", "timestamp", "flight_id"])
    frame["timestamp"] = pd.to_datetime(frame["timestamp"], utc=True)
    return frame


@pytest.mark.apache
def test_a_never_seen_multi_day_set_keeps_one_id_for_flights_across_midnight(
    apache_url: str, tmp_path: Path
) -> None:
    landing = tmp_path / "landing"
    counts = shifted_day_set(landing)
    day1, day2 = date(2023, 5, 14), date(2023, 5, 15)
    assert set(counts) == {day1, day2}
    for day in (day1, day2):  # day by day, as the schedule runs them
        report = ingest_partition(apache_url, day, landing)
        assert report.reconciles and report.rows_read == counts[day]
    stored = stored_ids(apache_url)

    # The same rows identified in one pass, with no midnight in between.
    whole = pd.concat(
        [
            reports.split(f, "").frame
            for day in (day1, day2)
            for reports in [PositionReports(day)]
            for f in day_frames(day, landing)
        ],
        ignore_index=True,
    )
    whole["expected"] = reference_ids(rows_of(whole))
    joined = stored.merge(
        whole[["icao24", "timestamp", "expected"]], on=["icao24", "timestamp"], how="left"
    )
    assert len(joined) == len(stored) == len(whole) - 4
    assert (joined["flight_id"] == joined["expected"]).all()
    across = stored.groupby("flight_id")["timestamp"].agg(lambda ts: ts.dt.date.nunique() == 2)
    # Flights seen on both sides of midnight (hour 13 and 14 of the original day): one id each.
    assert across.sum() == 32
    assert stored["flight_id"].nunique() == 238

    before = snapshot(apache_url)
    ingest_partition(apache_url, day2, landing)  # the second day again, after the first
    ingest_partition(apache_url, day1, landing)  # and the first day again, afterwards
    assert snapshot(apache_url) == before


@pytest.mark.apache
def test_aircraft_on_the_ground_at_midnight_resume_their_ground_run(
    apache_url: str, tmp_path: Path
) -> None:
    """Synthetic tracks across midnight, each exercising what the day resumes from."""
    midnight = int(datetime(2023, 5, 15, tzinfo=UTC).timestamp())
    tracks = {
        # airborne across midnight: one flight
        "aaaaa1": [(t, "AAA1", False) for t in every(10, -1200, 1200)],
        # lands 23:50, parked; landed 20 min later (00:10) on the next day; leaves 00:30
        "bbbbb2": (
            [(t, "BBB2", False) for t in every(10, -1800, -600)]
            + [(t, "BBB2", True) for t in every(10, -600, 1800)]
            + [(t, "BBB2", False) for t in every(10, 1800, 2400)]
        ),
        # first seen on the ground 23:45, a long taxi-out, airborne 00:15: one flight
        "ccccc3": (
            [(t, "CCC3", True) for t in every(10, -900, 900)]
            + [(t, "CCC3", False) for t in every(10, 900, 1500)]
        ),
        # lands 23:55 as DDD4; at 00:05 the crew sets DDD5: a new flight then, and only then
        "ddddd4": (
            [(t, "DDD4", False) for t in every(10, -1500, -300)]
            + [(t, "DDD4", True) for t in every(10, -300, 300)]
            + [(t, "DDD5", True) for t in every(10, 300, 2700)]
            + [(t, "DDD5", False) for t in every(10, 2700, 3000)]
        ),
        # last seen 23:20, back at 00:00: a gap
        "eeeee5": (
            [(t, "EEE5", False) for t in every(10, -3600, -2400)]
            + [(t, "EEE5", False) for t in every(10, 0, 600)]
        ),
    }
    rows = sorted(
        (midnight + t, icao, cs, g) for icao, track in tracks.items() for t, cs, g in track
    )
    for day, part in (
        (date(2023, 5, 14), [r for r in rows if r[0] < midnight]),
        (date(2023, 5, 15), [r for r in rows if r[0] >= midnight]),
    ):
        lines = [
            f"{t:.0f},{icao},{47.45 + (t - midnight) * 1e-5:.6f},8.56,{0 if g else 120},90,0,"
            f"{cs},{g},False,False,"
            f"1000,{'' if g else 3000},,{t:.3f},{t:.3f}"
            for t, icao, cs, g in part
        ]
        folder = tmp_path / day.isoformat()
        folder.mkdir()
        (folder / f"states_{day}-00.csv").write_bytes(csv_bytes(lines))
        assert ingest_partition(apache_url, day, tmp_path).rows_stored == len(lines)
    stored = stored_ids(apache_url)
    expected = pd.DataFrame(
        {
            "icao24": [r[1] for r in rows],
            "timestamp": pd.to_datetime([r[0] for r in rows], unit="s", utc=True),
            "expected": reference_ids([(i, float(t), cs, g) for t, i, cs, g in rows]),
        }
    )
    joined = stored.merge(expected, on=["icao24", "timestamp"])
    assert len(joined) == len(rows) and (joined["flight_id"] == joined["expected"]).all()
    starts = stored.groupby("flight_id")["timestamp"].min().sort_values()
    minutes = {f: int((t.timestamp() - midnight) // 60) for f, t in starts.items()}
    assert sorted(minutes.values()) == [-60, -30, -25, -20, -15, 0, 5, 10]
    assert {f[:6] for f, m in minutes.items() if m in (5, 10, 0)} == {"ddddd4", "bbbbb2", "eeeee5"}
