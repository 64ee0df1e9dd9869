"""What a position report is, column by column, and what a rejected record carries: the
contract between the readers that produce them and the warehouse that stores them."""

from __future__ import annotations

from dataclasses import dataclass

# The columns of a position report, in order; `timestamp` is UTC.
POSITION_COLUMNS = (
    "flight_id",
    "timestamp",
    "latitude",
    "longitude",
    "altitude",
    "airspeed",
    "track",
    "vertical_rate",
    "on_ground",
    "squawk",
)
METADATA_COLUMNS = (
    "airline",
    "flight_number",
    "departure_airport",
    "arrival_airport",
    "icao24",
    "callsign",
)


@dataclass(frozen=True)
class Rejected:
    """One input record (or a whole file) that will not be stored, and why."""

    source_file: str
    reason: str
    raw_record: str | None = None
    line: int | None = None
    byte_offset: int | None = None
