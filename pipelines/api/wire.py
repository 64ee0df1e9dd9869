"""Serialises tracks to `FlightDataResponse` bytes column by column, with numpy.

Building one protobuf message per point in Python costs about 1.5 us a point, more than
fetching the point from PostgreSQL, and a 10,000-point track spent most of its time there.
The response is instead assembled as bytes: the fields that vary per point are encoded a
column at a time, the fields every point shares (flight id and metadata) are serialised once by
protobuf itself, and the per-point pieces are interleaved with one boolean mask. The result
parses as the message the generated classes would build (the tests compare the two).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pipelines.proto import flight_pb2
from pipelines.warehouse.flight_reads import FlightMeta, Track

_VARINT, _FIXED64, _LENGTH, _FIXED32 = 0, 1, 2, 5
# The smallest value needing 2, 3, ... 10 varint bytes.
_VARINT_LIMITS = np.array([1 << (7 * k) for k in range(1, 10)], dtype=np.uint64)
_DATA_FIELD = flight_pb2.FlightDataResponse.DESCRIPTOR.fields_by_name["flight_data"].number
_FIELDS = flight_pb2.FlightData.DESCRIPTOR.fields_by_name

_US_PER_DAY = 86_400_000_000
_DIGIT_PAIRS = np.array([[48 + i // 10, 48 + i % 10] for i in range(100)], dtype=np.uint8)
_SECONDS = np.arange(86_400)
_COLON = np.full((86_400, 1), ord(":"), dtype=np.uint8)
# "HH:MM:SS" for every second of a day, looked up instead of computed per point.
_CLOCK = np.concatenate(
    [
        _DIGIT_PAIRS[_SECONDS // 3600],
        _COLON,
        _DIGIT_PAIRS[_SECONDS // 60 % 60],
        _COLON,
        _DIGIT_PAIRS[_SECONDS % 60],
    ],
    axis=1,
)


def _tag(name: str, wire_type: int) -> int:
    tag: int = _FIELDS[name].number << 3 | wire_type
    assert tag < 0x80, "one-byte tags only"
    return tag


def computed_varints(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Varint bytes of integers (negative ones take ten bytes, as protobuf's int32 does)."""
    unsigned = values.astype(np.int64).view(np.uint64)
    lengths = np.searchsorted(_VARINT_LIMITS, unsigned, side="right") + 1
    width = int(lengths.max(initial=1))
    groups = np.empty((len(values), width), dtype=np.uint8)
    for k in range(width):
        groups[:, k] = (unsigned >> np.uint64(7 * k)) & np.uint64(0x7F)
    groups[np.arange(width) < (lengths - 1)[:, None]] |= 0x80
    return groups, lengths


# The varints of every integer a track's fields hold once validated (altitude, airspeed,
# vertical rate) and of a point's message size, computed once: a lookup costs less than the
# computation for each call.
_TABLED = np.arange(-(1 << 15), 1 << 17)
_TABLE_GROUPS, _TABLE_LENGTHS = computed_varints(_TABLED)


def varints(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """`computed_varints`, looked up when every value is in the table."""
    integers = values.astype(np.int64)
    if not len(integers) or integers.min() < _TABLED[0] or integers.max() > _TABLED[-1]:
        return computed_varints(integers)
    rows = integers - _TABLED[0]
    lengths = _TABLE_LENGTHS[rows]
    return _TABLE_GROUPS[rows, : int(lengths.max())], lengths


def iso_timestamps(times_us: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """ISO 8601 UTC ending in `Z` as ASCII rows, and their lengths: `2024-01-02T07:22:55Z`,
    with `.ffffff` before the `Z` when the second has a fraction (as `datetime.isoformat`)."""
    n = len(times_us)
    days, of_day = np.divmod(times_us, _US_PER_DAY)
    seconds, fraction = np.divmod(of_day, 1_000_000)
    # A track covers few days: format each distinct day once.
    new_day = np.ones(n, dtype=bool)
    new_day[1:] = days[1:] != days[:-1]
    dates = np.datetime_as_string(days[new_day].astype("datetime64[D]")).astype("S10")
    fractional = np.flatnonzero(fraction)
    text = np.empty((n, 27 if len(fractional) else 20), dtype=np.uint8)
    text[:, :10] = dates.view(np.uint8).reshape(-1, 10)[np.cumsum(new_day) - 1]
    text[:, 10] = ord("T")
    text[:, 11:19] = _CLOCK[seconds]
    text[:, 19] = ord("Z")
    lengths = np.full(n, 20)
    if len(fractional):
        micros = fraction[fractional]
        text[fractional, 19] = ord(".")
        text[fractional, 20:22] = _DIGIT_PAIRS[micros // 10_000]
        text[fractional, 22:24] = _DIGIT_PAIRS[micros // 100 % 100]
        text[fractional, 24:26] = _DIGIT_PAIRS[micros % 100]
        text[fractional, 26] = ord("Z")
        lengths[fractional] = 27
    return text, lengths


class _Pieces:
    """Each point's bytes as fixed-width blocks, with how much of each block a point uses."""

    def __init__(self, n: int) -> None:
        self.n = n
        self._blocks: list[np.ndarray] = []
        self._used: list[np.ndarray] = []

    def add(self, block: np.ndarray, used: np.ndarray) -> None:
        self._blocks.append(block)
        self._used.append(used)

    def add_field(self, tag: int, body: np.ndarray, used: np.ndarray, present: np.ndarray) -> None:
        """A tagged field, left out of the points where `present` is false."""
        block = np.empty((self.n, body.shape[1] + 1), dtype=np.uint8)
        block[:, 0] = tag
        block[:, 1:] = body
        self.add(block, np.where(present, used + 1, 0))

    def add_constant(self, data: bytes) -> None:
        block = np.broadcast_to(np.frombuffer(data, dtype=np.uint8), (self.n, len(data)))
        self.add(block, np.full(self.n, len(data)))

    def extend(self, other: _Pieces) -> None:
        self._blocks += other._blocks
        self._used += other._used

    def sizes(self) -> np.ndarray:
        return np.asarray(np.sum(self._used, axis=0))

    def join(self) -> bytes:
        """Every point's bytes in order: the blocks side by side, unused tails dropped."""
        if self.n == 0:
            return b""
        widths = [block.shape[1] for block in self._blocks]
        block_of_column = np.repeat(np.arange(len(widths)), widths)
        # The smallest integers that fit: the mask's inputs are as large as the output.
        small = np.min_scalar_type(max(widths))
        column_in_block = np.concatenate([np.arange(w, dtype=small) for w in widths])
        used = np.stack(self._used, axis=1).astype(small)[:, block_of_column]
        matrix = np.concatenate(self._blocks, axis=1)
        return matrix[column_in_block < used].tobytes()


def _fixed(values: np.ndarray, dtype: str) -> np.ndarray:
    width = np.dtype(dtype).itemsize
    return np.ascontiguousarray(values, dtype=dtype).view(np.uint8).reshape(-1, width)


def _integers(values: np.ndarray) -> np.ndarray:
    return np.asarray(np.nan_to_num(np.rint(values), nan=0.0), dtype=np.int64)


def _add_points(pieces: _Pieces, track: Track) -> None:
    n = len(track)
    everywhere = np.ones(n, dtype=bool)
    for name in ("latitude", "longitude"):
        body = _fixed(getattr(track, name), "<f8")
        pieces.add_field(_tag(name, _FIXED64), body, np.full(n, 8), everywhere)
    for name in ("altitude", "airspeed"):
        values = _integers(getattr(track, name))
        pieces.add_field(_tag(name, _VARINT), *varints(values), values != 0)

    text, lengths = iso_timestamps(track.times_us)
    body = np.empty((n, text.shape[1] + 1), dtype=np.uint8)
    body[:, 0] = lengths
    body[:, 1:] = text
    pieces.add_field(_tag("timestamp", _LENGTH), body, lengths + 1, everywhere)

    known = ~np.isnan(track.track)
    pieces.add_field(_tag("track", _FIXED32), _fixed(track.track, "<f4"), np.full(n, 4), known)
    known = ~np.isnan(track.vertical_rate)
    pieces.add_field(
        _tag("vertical_rate", _VARINT), *varints(_integers(track.vertical_rate)), known
    )
    known = ~np.isnan(track.on_ground)
    ground = _integers(track.on_ground).astype(np.uint8)[:, None]
    pieces.add_field(_tag("on_ground", _VARINT), ground, np.ones(n, dtype=np.int64), known)


def _shared_fields(meta: FlightMeta) -> bytes:
    """The fields every point of the flight carries, serialised once by protobuf."""
    return flight_pb2.FlightData(
        flight_id=meta.flight_id,
        airline=meta.airline or "",
        flight_number=meta.flight_number or "",
        departure_airport=meta.departure_airport or "",
        arrival_airport=meta.arrival_airport or "",
    ).SerializeToString()


@dataclass(frozen=True)
class Encoded:
    """A serialised `FlightDataResponse`, handed to gRPC as it is."""

    data: bytes


def encode_track(
    track: Track,
    meta: FlightMeta,
    *,
    resolution: flight_pb2.Resolution = flight_pb2.RESOLUTION_UNSPECIFIED,
    stored_points: int = 0,
) -> Encoded:
    """`FlightDataResponse(flight_data=[one FlightData per point], resolution, stored_points)`."""
    points = _Pieces(len(track))
    _add_points(points, track)
    points.add_constant(_shared_fields(meta))
    whole = _Pieces(len(track))
    whole.add_constant(bytes([_DATA_FIELD << 3 | _LENGTH]))
    whole.add(*varints(points.sizes()))
    whole.extend(points)
    tail = flight_pb2.FlightDataResponse(resolution=resolution, stored_points=stored_points)
    return Encoded(whole.join() + tail.SerializeToString())


def serialize_response(response: Encoded | flight_pb2.FlightDataResponse) -> bytes:
    """gRPC's serializer for FlightDataResponse: encoded tracks pass through as they are."""
    if isinstance(response, Encoded):
        return response.data
    return response.SerializeToString()
