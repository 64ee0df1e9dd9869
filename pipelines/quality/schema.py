"""The one definition of a valid position report, as a Pandera schema.

Plausible ranges (documented in the README):
- latitude -90..90, longitude -180..180 (degrees, WGS 84);
- altitude -2,000..80,000 ft: below the lowest airfields (Dead Sea area, about -1,400 ft)
  up to above the highest-flying aircraft that report ADS-B; whole feet;
- airspeed 0..2,000 kt, whole knots (ground speed in a jet stream exceeds 700 kt);
- track 0..360 degrees; vertical rate -30,000..30,000 ft/min;
- timestamp parsed, UTC, from 2000-01-01 and not more than 5 minutes in the future (clock
  skew); an epoch number outside 2000..2099 is not converted at all;
- flight_id 1 to 12 characters; metadata text within its column's length, without control
  characters (PostgreSQL cannot store NUL, and no field of a report has a reason to hold
  any other C0 control or DEL).
The same schema feeds the column schema shown in the Dagster UI.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import pandera.pandas as pa
import pyarrow as pa_arrow

from pipelines.drops.batches import EARLIEST_TIMESTAMP, TEXT

FUTURE_TOLERANCE = timedelta(minutes=5)
CONTROL_CHARACTERS = r"[\x00-\x1f\x7f]"


def _whole(series: pd.Series) -> pd.Series:
    return series.isna() | (series == series.round())


def _not_in_future(series: pd.Series) -> pd.Series:
    return series <= pd.Timestamp(datetime.now(UTC) + FUTURE_TOLERANCE)


def _no_control_characters(series: pd.Series) -> pd.Series | bool:
    """Row by row only when the column's bytes hold a control character at all (rare): a
    scan of the raw Arrow buffers costs far less than a regular expression per row."""
    if series.empty:  # pandera leaves nulls out
        return True
    arrow = pa_arrow.array(series.array, type=pa_arrow.string())
    chunks = arrow.chunks if isinstance(arrow, pa_arrow.ChunkedArray) else [arrow]
    if not any(_has_control_byte(chunk) for chunk in chunks):
        return True
    return ~series.str.contains(CONTROL_CHARACTERS, regex=True).fillna(False)


def _has_control_byte(chunk: pa_arrow.Array) -> bool:
    data = chunk.buffers()[2]
    if data is None:
        return False
    raw = np.frombuffer(data, dtype=np.uint8)
    return bool(((raw < 0x20) | (raw == 0x7F)).any())


def _text(max_len: int, description: str, *, nullable: bool = True) -> pa.Column:
    checks = [
        pa.Check.str_length(1 if not nullable else 0, max_len),
        pa.Check(
            _no_control_characters,
            name="no_control_characters",
            error="holds a control character (NUL, C0 or DEL)",
        ),
    ]
    return pa.Column(TEXT, checks, nullable=nullable, description=description)


POSITION_SCHEMA = pa.DataFrameSchema(
    {
        "flight_id": _text(12, "Flight identifier (Flightradar24 id or derived)", nullable=False),
        "timestamp": pa.Column(
            "datetime64[ns, UTC]",
            [
                pa.Check.greater_than_or_equal_to(EARLIEST_TIMESTAMP),
                pa.Check(_not_in_future, name="not_in_future", error="in the future"),
            ],
            nullable=False,
            description="Time of the position report, UTC",
        ),
        "latitude": pa.Column(
            "Float64",
            pa.Check.in_range(-90, 90),
            nullable=False,
            description="Degrees north, WGS 84",
        ),
        "longitude": pa.Column(
            "Float64",
            pa.Check.in_range(-180, 180),
            nullable=False,
            description="Degrees east, WGS 84",
        ),
        "altitude": pa.Column(
            "Float64",
            [
                pa.Check.in_range(-2_000, 80_000),
                pa.Check(_whole, name="whole_number", error="not a whole number"),
            ],
            nullable=True,
            description="Barometric altitude, feet",
        ),
        "airspeed": pa.Column(
            "Float64",
            [
                pa.Check.in_range(0, 2_000),
                pa.Check(_whole, name="whole_number", error="not a whole number"),
            ],
            nullable=True,
            description="Speed, knots",
        ),
        "track": pa.Column(
            "Float64",
            pa.Check.in_range(0, 360),
            nullable=True,
            description="Track over ground, degrees from north",
        ),
        "vertical_rate": pa.Column(
            "Float64",
            pa.Check.in_range(-30_000, 30_000),
            nullable=True,
            description="Vertical rate, feet per minute",
        ),
        "on_ground": pa.Column("boolean", nullable=True, description="Aircraft on the ground"),
        "squawk": _text(4, "Transponder code"),
        "airline": _text(128, "Operating airline"),
        "flight_number": _text(16, "Commercial flight number"),
        "departure_airport": _text(8, "Departure airport code"),
        "arrival_airport": _text(8, "Arrival airport code"),
        "icao24": _text(6, "ICAO 24-bit aircraft address, hex"),
        "callsign": _text(8, "Callsign as broadcast"),
    },
    strict=False,
    name="position_report",
)
