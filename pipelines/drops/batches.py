"""The common shape every reader yields: a bounded batch of decoded records plus rejects."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import ROUND_FLOOR, Decimal
from typing import Any, TypeAlias

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from pipelines.flights.records import METADATA_COLUMNS, POSITION_COLUMNS, Rejected

# Columns of a batch frame, in order: a position report's (pipelines/flights/records.py), then
# where it came from. `timestamp` is parsed (UTC, NaT when unparseable); `raw_timestamp` keeps
# the text for the quarantine record; `record` is the record's number in its file (line for
# text formats, message for protobuf) and `byte_offset` its position.
LOCATION_COLUMNS = ("record", "byte_offset", "raw_timestamp")
BATCH_COLUMNS = POSITION_COLUMNS + METADATA_COLUMNS + LOCATION_COLUMNS

DEFAULT_BATCH_ROWS = 100_000


@dataclass
class DropBatch:
    """Up to `batch_rows` decoded records of one file, and what could not be decoded."""

    source_file: str
    frame: pd.DataFrame
    rejected: list[Rejected] = field(default_factory=list)

    @property
    def rows_read(self) -> int:
        """Records read: decoded ones plus rejects (an unreadable file counts as one record)."""
        return len(self.frame) + len(self.rejected)


TEXT = pd.StringDtype("pyarrow")
# Plausible times of a position report: from 2000-01-01 UTC (flight ids count seconds from
# it) to the end of 2099. An epoch number outside is never converted (it could overflow or
# wrap); an ISO time outside is rejected by the schema.
EARLIEST_TIMESTAMP = pd.Timestamp("2000-01-01", tz="UTC")
LATEST_TIMESTAMP = pd.Timestamp("2100-01-01", tz="UTC")
_ISO_SECONDS_Z = "%Y-%m-%dT%H:%M:%SZ"  # the common shape, parsed in Arrow's C++ first
_ISO_SECONDS_Z_PATTERN = r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$"


def parse_timestamps(raw: pd.Series) -> pd.Series:
    """ISO 8601 (with zone or `Z`; naive means UTC) or UNIX epoch seconds, as the seed allows.

    The common `2024-01-02T07:22:55Z` parses in one vectorised pass; only what that leaves
    unparsed is tried as any ISO 8601, then as epoch seconds."""
    arrow = pa.array(raw.array, type=pa.string()) if len(raw) else pa.array([], pa.string())
    if isinstance(arrow, pa.ChunkedArray):
        arrow = arrow.combine_chunks()
    fast = _exact(arrow, pc.strptime(arrow, format=_ISO_SECONDS_Z, unit="ns", error_is_null=True))
    parsed = (
        pd.Series(fast.to_numpy(zero_copy_only=False), index=raw.index, dtype="datetime64[ns]")
        .dt.tz_localize("UTC")
        .copy()
    )
    missing = parsed.isna() & raw.notna()
    if missing.any():
        rest = raw[missing].astype(object)
        iso = _iso_times(rest)
        epoch = pd.Series(
            epoch_nanoseconds(arrow.filter(pa.array(missing.to_numpy()))),
            index=rest.index,
            dtype="datetime64[ns]",
        ).dt.tz_localize("UTC")
        # The database keeps microseconds: finer digits are dropped here, or two reports a
        # nanosecond apart would be two keys to pandas and one to the table's primary key.
        parsed[missing] = iso.where(iso.notna(), epoch).dt.floor("us").astype("datetime64[ns, UTC]")
    return parsed


# A time that names its zone after its clock: `Z`, or an offset from UTC (`+05:30`, `-0800`,
# `+01`); a date alone (`2024-03-01`) names none, though it ends like an offset.
_ZONED = r"(?i)[t\s]\d\d(?::?\d\d(?::?\d\d(?:[.,]\d*)?)?)?\s*(?:z|[+-]\d\d(?::?\d\d)?)\s*$"


def _iso_times(text: pd.Series) -> pd.Series:
    """Any ISO 8601 time, UTC; NaT where the text is none. Naive and zoned times are parsed
    apart: in one call, pandas gives a naive time the offset of a zoned one before it
    (`10:00` after `10:00+05:30` came out as 04:30), so a time would depend on its
    neighbours."""
    zoned = text.str.contains(_ZONED, regex=True, na=False)
    parsed = pd.Series(pd.NaT, index=text.index, dtype="datetime64[ns, UTC]")
    for part in (zoned, ~zoned):
        if part.any():
            times = pd.to_datetime(text[part], utc=True, errors="coerce", format="ISO8601")
            parsed[part] = times.astype("datetime64[ns, UTC]")
    return parsed


# Epoch seconds with at most six fraction digits (OpenSky writes three): below 2^32 seconds a
# float holds such a time to within half a microsecond, so rounding it to microseconds gives
# the digits exactly, at a fraction of the cost of reading them one by one.
_EPOCH_MICROS = r"^\+?\d{1,12}(\.\d{0,6})?$"
# Any other epoch seconds: split at the point (leading zeros dropped, so that a long run of
# them still casts), up to nanoseconds of fraction; or, rarer, with an exponent. Read digit
# by digit: through a float, `1217726545.2674599999` would come out as .26746.
_EPOCH_DIGITS = r"^\+?0*(?P<whole>\d{1,12})(?:\.(?P<fraction>\d*))?$"
_EPOCH_EXPONENT = r"^\+?(\d+\.?\d*|\.\d+)[eE][+-]?\d+$"
_NOT_A_TIME = -1


def epoch_nanoseconds(text: pa.Array) -> np.ndarray:
    """Nanoseconds since the epoch of epoch-seconds text, exactly (finer digits dropped);
    NaT where the text is not such a number or the time lies outside 2000..2099."""
    text = pc.utf8_trim_whitespace(text)
    short = pc.fill_null(pc.match_substring_regex(text, _EPOCH_MICROS), False)
    seconds = pc.cast(pc.if_else(short, text, pa.scalar(None, pa.string())), pa.float64())
    floats = pc.fill_null(seconds, np.nan).to_numpy(zero_copy_only=False)
    in_range = (floats >= _EARLIEST_SECONDS) & (floats < _LATEST_SECONDS)
    micros = np.round(np.where(in_range, floats, 0) * 1e6).astype(np.int64)
    values = np.where(in_range, micros * 1000, _NOT_A_TIME)
    others = pc.and_(pc.is_valid(text), pc.invert(short))
    rest = np.flatnonzero(others.to_numpy(zero_copy_only=False))
    if len(rest):
        values[rest] = _epoch_digits(text.take(pa.array(rest)))
    plausible = (values >= EARLIEST_TIMESTAMP.value) & (values < LATEST_TIMESTAMP.value)
    return np.where(plausible, values, np.datetime64("NaT").astype(np.int64)).astype(
        "datetime64[ns]"
    )


_EARLIEST_SECONDS = int(EARLIEST_TIMESTAMP.timestamp())
_LATEST_SECONDS = int(LATEST_TIMESTAMP.timestamp())


def _epoch_digits(text: pa.Array) -> np.ndarray:
    """`epoch_nanoseconds` of text that is not a short epoch number, digit by digit;
    _NOT_A_TIME where it is no epoch time in range."""
    parts = pc.extract_regex(pc.fill_null(text, ""), _EPOCH_DIGITS)
    whole = pc.cast(pc.if_else(pc.is_valid(parts), parts.field("whole"), "0"), pa.int64())
    # Whole seconds out of range are no time, and kept out of the product (it would wrap).
    matched = pc.and_(
        pc.is_valid(parts),
        pc.and_(pc.greater_equal(whole, _EARLIEST_SECONDS), pc.less(whole, _LATEST_SECONDS)),
    )
    fraction = pc.if_else(matched, parts.field("fraction"), "")
    fraction = pc.utf8_slice_codeunits(pc.utf8_rpad(fraction, 9, "0"), 0, 9)
    seconds = pc.if_else(matched, whole, 0)
    nanos = pc.add(pc.multiply(seconds, 1_000_000_000), pc.cast(fraction, pa.int64()))
    values = np.array(pc.if_else(matched, nanos, _NOT_A_TIME).to_numpy())
    for i in np.flatnonzero(pc.fill_null(pc.match_substring_regex(text, _EPOCH_EXPONENT), False)):
        try:
            exact = Decimal(text[int(i)].as_py()).scaleb(9)
        except ArithmeticError:  # an exponent beyond what Decimal holds: no time either
            continue
        if EARLIEST_TIMESTAMP.value <= exact < LATEST_TIMESTAMP.value:
            values[i] = int(exact.to_integral_value(ROUND_FLOOR))
    return values


def _exact(text: pa.Array, parsed: pa.Array) -> pa.Array:
    """`parsed` where it says what `text` says: strptime also takes `10:00:2Z`, and rolls an
    impossible day or second over (`02-30` into March, `23:59:60` into the next day) instead
    of refusing; those become null, for the slower parse to judge."""
    chars = _fixed_width(text)
    if chars is None:  # not all of the common shape: the general (slower) check
        shaped = pc.fill_null(pc.match_substring_regex(text, _ISO_SECONDS_Z_PATTERN), False)
        chars = _fixed_width(pc.if_else(shaped, text, _EPOCH_TEXT))
        assert chars is not None
        ok = shaped.to_numpy(zero_copy_only=False)
    else:
        digits = (chars[:, _DIGITS] - np.uint8(ord("0"))) < 10  # wraps below "0"
        ok = digits.all(axis=1) & (chars[:, _SEPARATORS] == _SEPARATOR_CHARS).all(axis=1)
    day = _two_digits(chars, 8)
    second = _two_digits(chars, 17)
    # Only a day past the 28th or a 60th second can have rolled over.
    doubtful = np.flatnonzero(ok & ((day > 28) | (second > 59)))
    if len(doubtful):
        taken = pc.fill_null(parsed.take(pa.array(doubtful)), 0).cast(pa.int64())
        nanos = taken.to_numpy(zero_copy_only=False)
        days = nanos.astype("datetime64[ns]").astype("datetime64[D]")
        first = days.astype("datetime64[M]").astype("datetime64[D]")
        month_day = (days - first).astype(np.int64) + 1
        same = (month_day == day[doubtful]) & (nanos // 1_000_000_000 % 60 == second[doubtful])
        ok[doubtful] = same
    return pc.if_else(pa.array(ok), parsed, pa.scalar(None, parsed.type))


def _two_digits(chars: np.ndarray, at: int) -> np.ndarray:
    tens: np.ndarray = chars[:, at].astype(np.int64) - ord("0")
    ones: np.ndarray = chars[:, at + 1].astype(np.int64) - ord("0")
    both: np.ndarray = tens * 10 + ones
    return both


def _fixed_width(text: pa.Array) -> np.ndarray | None:
    """The texts as an (n, 20) byte matrix when every one is 20 bytes long, else None."""
    width = len(_EPOCH_TEXT)
    if text.null_count:
        return None
    offsets = np.frombuffer(text.buffers()[1], dtype=np.int32)
    offsets = offsets[text.offset : text.offset + len(text) + 1]
    if not (np.diff(offsets) == width).all():
        return None
    data = np.frombuffer(text.buffers()[2] or b"", dtype=np.uint8)[offsets[0] : offsets[-1]]
    return data.reshape(len(text), width)


_DIGITS = [0, 1, 2, 3, 5, 6, 8, 9, 11, 12, 14, 15, 17, 18]
_SEPARATORS = [4, 7, 10, 13, 16, 19]
_SEPARATOR_CHARS = np.frombuffer(b"--T::Z", dtype=np.uint8)
_EPOCH_TEXT = "1970-01-01T00:00:00Z"


Column: TypeAlias = list[Any] | np.ndarray | pa.Array


def _floats(values: Column | None, n: int) -> pd.api.extensions.ExtensionArray:
    if values is None:
        return pd.arrays.FloatingArray(np.zeros(n), np.ones(n, dtype=bool))
    # None becomes NaN here, and NaN becomes NA (built directly: pandas' generic coercion
    # of a float array costs more than the decoding that produced it).
    data = np.asarray(values, dtype="float64")
    return pd.arrays.FloatingArray(data, np.isnan(data))


def _offsets(values: Column | None, n: int) -> pd.api.extensions.ExtensionArray:
    if isinstance(values, np.ndarray):  # the protobuf reader: every record has one
        return pd.arrays.IntegerArray(values.astype("int64"), np.zeros(n, dtype=bool))
    return pd.array([None] * n if values is None else values, dtype="Int64")


def _text(values: Column | None, n: int) -> pd.api.extensions.ExtensionArray:
    return pd.array(pa.nulls(n, pa.string()) if values is None else values, dtype=TEXT)


def frame_from_columns(columns: Mapping[str, Column]) -> pd.DataFrame:
    """A batch frame with every batch column, typed; absent columns are all-null.

    Text columns may come as Python lists or Arrow arrays, numbers as lists or numpy arrays.
    """
    n = len(columns["record"])
    raw_ts = pd.Series(_text(columns["raw_timestamp"], n))
    on_ground = columns.get("on_ground")
    return pd.DataFrame(
        {
            "flight_id": _text(columns.get("flight_id"), n),
            "timestamp": parse_timestamps(raw_ts),
            **{
                name: _floats(columns.get(name), n)
                for name in (
                    "latitude",
                    "longitude",
                    "altitude",
                    "airspeed",
                    "track",
                    "vertical_rate",
                )
            },
            "on_ground": (
                pd.arrays.BooleanArray(np.zeros(n, bool), np.ones(n, bool))
                if on_ground is None
                else pd.array(on_ground, dtype="boolean")
            ),
            "squawk": _text(columns.get("squawk"), n),
            **{name: _text(columns.get(name), n) for name in METADATA_COLUMNS},
            "record": np.asarray(columns["record"], dtype="int64"),
            "byte_offset": _offsets(columns.get("byte_offset"), n),
            "raw_timestamp": raw_ts.array,
        }
    )
