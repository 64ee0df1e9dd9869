"""The common shape every reader yields: a bounded batch of decoded records plus rejects."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

# Columns of a batch frame, in order. `timestamp` is parsed (UTC, NaT when unparseable);
# `raw_timestamp` keeps the text for the quarantine record; `record` is the record's number
# in its file (line for text formats, message for protobuf) and `byte_offset` its position.
POSITION_COLUMNS = (
    "flight_id", "timestamp", "latitude", "longitude", "altitude", "airspeed",
    "track", "vertical_rate", "on_ground", "squawk",
)
METADATA_COLUMNS = (
    "airline", "flight_number", "departure_airport", "arrival_airport", "icao24", "callsign",
)
LOCATION_COLUMNS = ("record", "byte_offset", "raw_timestamp")
BATCH_COLUMNS = POSITION_COLUMNS + METADATA_COLUMNS + LOCATION_COLUMNS

DEFAULT_BATCH_ROWS = 100_000


@dataclass(frozen=True)
class Rejected:
    """One input record (or a whole file) that will not be stored, and why."""

    source_file: str
    reason: str
    raw_record: str | None = None
    line: int | None = None
    byte_offset: int | None = None


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


def parse_timestamps(raw: pd.Series) -> pd.Series:
    """ISO 8601 (with zone or `Z`; naive means UTC) or UNIX epoch seconds, as the seed allows.

    ISO is the common case and parses in one vectorised pass; only what it leaves unparsed is
    tried as epoch seconds."""
    parsed = pd.to_datetime(raw, utc=True, errors="coerce", format="ISO8601")
    missing = parsed.isna() & raw.notna()
    if missing.any():
        epoch = pd.to_numeric(raw[missing].str.strip(), errors="coerce")
        parsed[missing] = pd.to_datetime(epoch, unit="s", utc=True, errors="coerce")
    return parsed.astype("datetime64[ns, UTC]")


def _floats(values: list | None, n: int) -> pd.api.extensions.ExtensionArray:
    if values is None:
        return pd.array(np.full(n, np.nan), dtype="Float64")
    # None becomes NaN here, and NaN becomes NA in the masked array.
    return pd.array(np.asarray(values, dtype="float64"), dtype="Float64")


def frame_from_columns(columns: dict[str, list]) -> pd.DataFrame:
    """A batch frame with every batch column, typed; absent columns are all-null."""
    n = len(columns["record"])

    def text(name: str) -> pd.api.extensions.ExtensionArray:
        values = columns.get(name)
        return pd.array([None] * n if values is None else values, dtype="string")

    raw_ts = pd.Series(columns["raw_timestamp"], dtype="string")
    on_ground = columns.get("on_ground")
    return pd.DataFrame(
        {
            "flight_id": text("flight_id"),
            "timestamp": parse_timestamps(raw_ts),
            **{name: _floats(columns.get(name), n)
               for name in ("latitude", "longitude", "altitude", "airspeed", "track",
                            "vertical_rate")},
            "on_ground": pd.array([None] * n if on_ground is None else on_ground,
                                  dtype="boolean"),
            "squawk": text("squawk"),
            **{name: text(name) for name in METADATA_COLUMNS},
            "record": np.asarray(columns["record"], dtype="int64"),
            "byte_offset": pd.array(columns.get("byte_offset", [None] * n), dtype="Int64"),
            "raw_timestamp": raw_ts.array,
        }
    )
