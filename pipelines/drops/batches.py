"""The common shape every reader yields: a bounded batch of decoded records plus rejects."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
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
_ISO_SECONDS_Z = "%Y-%m-%dT%H:%M:%SZ"  # the common shape, parsed in Arrow's C++ first


def parse_timestamps(raw: pd.Series) -> pd.Series:
    """ISO 8601 (with zone or `Z`; naive means UTC) or UNIX epoch seconds, as the seed allows.

    The common `2024-01-02T07:22:55Z` parses in one vectorised pass; only what that leaves
    unparsed is tried as any ISO 8601, then as epoch seconds."""
    arrow = pa.array(raw.array, type=pa.string()) if len(raw) else pa.array([], pa.string())
    fast = pc.strptime(arrow, format=_ISO_SECONDS_Z, unit="ns", error_is_null=True)
    parsed = (
        pd.Series(fast.to_numpy(zero_copy_only=False), index=raw.index, dtype="datetime64[ns]")
        .dt.tz_localize("UTC")
        .copy()
    )
    missing = parsed.isna() & raw.notna()
    if missing.any():
        rest = raw[missing].astype(object)
        iso = pd.to_datetime(rest, utc=True, errors="coerce", format="ISO8601")
        epoch = pd.to_numeric(rest.str.strip(), errors="coerce")
        iso = iso.where(iso.notna(), pd.to_datetime(epoch, unit="s", utc=True, errors="coerce"))
        parsed[missing] = iso.astype("datetime64[ns, UTC]")
    return parsed


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
