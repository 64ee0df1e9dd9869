"""Turns request messages into checked queries; anything wrong is a `BadRequest` that says what.

Limits come from the server's configuration, so a client learns the limit from the message.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import math
from dataclasses import astuple, dataclass
from datetime import UTC, datetime, timedelta

from google.protobuf.message import Message
from google.protobuf.timestamp_pb2 import Timestamp

from pipelines.api.config import ApiConfig
from pipelines.proto import flight_pb2
from pipelines.warehouse.flight_reads import (
    OPEN_END,
    OPEN_START,
    BoundingBox,
    FlightListing,
    FlightQuery,
    Window,
)

# The store's column sizes (sql/migrations/001_flight_tables.sql).
MAX_FLIGHT_ID = 12
MAX_AIRLINE = 128
MAX_AIRPORT = 8


class BadRequest(ValueError):
    """The request cannot be served as it is; the message is for the caller."""


@dataclass(frozen=True)
class TrackQuery:
    flight_id: str
    window: Window
    limit: int  # max_points, or page size when streaming


@dataclass(frozen=True)
class ListQuery:
    query: FlightQuery
    after: tuple[datetime, str] | None
    page_size: int


def flight_id(value: str) -> str:
    if not value:
        raise BadRequest("flight_id is required")
    if len(value) > MAX_FLIGHT_ID:
        raise BadRequest(f"flight_id is {len(value)} characters long; the limit is {MAX_FLIGHT_ID}")
    if not value.isprintable():
        raise BadRequest("flight_id has control characters")
    return value


def _time(message: Message, name: str) -> datetime | None:
    if not message.HasField(name):
        return None
    stamp: Timestamp = getattr(message, name)
    try:
        return stamp.ToDatetime(tzinfo=UTC)
    except ValueError as exc:
        raise BadRequest(f"{name} is not a valid timestamp: {exc}") from None


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def to_timestamp(value: datetime) -> Timestamp:
    """`Timestamp.FromDatetime`'s result (naive is UTC), three times faster: a listing page
    converts two hundred."""
    since = value - (_EPOCH if value.tzinfo else _EPOCH.replace(tzinfo=None))
    return Timestamp(seconds=since.days * 86_400 + since.seconds, nanos=since.microseconds * 1000)


def window(message: Message) -> Window:
    start, end = _time(message, "start_time"), _time(message, "end_time")
    if start is not None and end is not None and start >= end:
        raise BadRequest(
            f"start_time ({start.isoformat()}) must be before end_time ({end.isoformat()})"
        )
    return Window(start or OPEN_START, end or OPEN_END)


def _limit(value: int, name: str, *, default: int, maximum: int) -> int:
    if value == 0:
        return default
    if not 1 <= value <= maximum:
        raise BadRequest(f"{name} must be from 1 to {maximum} (0 for {default}), got {value}")
    return value


def track(request: flight_pb2.FlightDataRequest, config: ApiConfig) -> TrackQuery:
    hint = "; StreamFlightData sends whole tracks in pages"
    try:
        limit = _limit(
            request.max_points, "max_points", default=config.max_points, maximum=config.max_points
        )
    except BadRequest as exc:
        raise BadRequest(f"{exc}{hint}") from None
    return TrackQuery(flight_id(request.flight_id), window(request), limit)


def stream(request: flight_pb2.StreamFlightDataRequest, config: ApiConfig) -> TrackQuery:
    # A page is one message, like GetFlightData's response: the same limit applies.
    size = _limit(
        request.page_size,
        "page_size",
        default=min(config.stream_page_size, config.max_points),
        maximum=config.max_points,
    )
    return TrackQuery(flight_id(request.flight_id), window(request), size)


def _text(value: str, name: str, maximum: int) -> str | None:
    if len(value) > maximum:
        raise BadRequest(f"{name} is {len(value)} characters long; the limit is {maximum}")
    if "\x00" in value:  # PostgreSQL text cannot hold it, so no stored value has one
        raise BadRequest(f"{name} has a NUL character")
    return value or None


def _box(request: flight_pb2.ListFlightsRequest) -> BoundingBox | None:
    if not request.HasField("bounding_box"):
        return None
    b = request.bounding_box
    box = BoundingBox(b.min_latitude, b.min_longitude, b.max_latitude, b.max_longitude)
    for name, value, limit in (
        ("min_latitude", box.min_latitude, 90),
        ("max_latitude", box.max_latitude, 90),
        ("min_longitude", box.min_longitude, 180),
        ("max_longitude", box.max_longitude, 180),
    ):
        if not (math.isfinite(value) and -limit <= value <= limit):
            raise BadRequest(f"bounding_box.{name} must be from -{limit} to {limit}, got {value}")
    if box.min_latitude > box.max_latitude:
        raise BadRequest("bounding_box.min_latitude is above max_latitude")
    return box


def flights(request: flight_pb2.ListFlightsRequest, config: ApiConfig) -> ListQuery:
    # Asked of the message: a window may begin or end at the first or last instant there is.
    if not (request.HasField("start_time") and request.HasField("end_time")):
        raise BadRequest("start_time and end_time are both required")
    span = window(request)
    if span.end - span.start > config.max_list_window:
        raise BadRequest(f"the window may span at most {config.max_list_window.days} days")
    query = FlightQuery(
        window=span,
        airline=_text(request.airline, "airline", MAX_AIRLINE),
        departure_airport=_text(request.departure_airport, "departure_airport", MAX_AIRPORT),
        arrival_airport=_text(request.arrival_airport, "arrival_airport", MAX_AIRPORT),
        box=_box(request),
    )
    size = _limit(
        request.page_size,
        "page_size",
        default=config.list_page_size,
        maximum=config.max_list_page_size,
    )
    after = read_page_token(request.page_token, query) if request.page_token else None
    return ListQuery(query, after, size)


def _fingerprint(query: FlightQuery) -> str:
    """Ties a page token to its query: a token is meaningless with other filters."""
    return hashlib.sha256(repr(astuple(query)).encode()).hexdigest()[:16]


def page_token(query: FlightQuery, last: FlightListing) -> str:
    """The position after `last`: opaque to clients, stable while the data is."""
    position = {"t": last.first_seen.isoformat(), "f": last.flight_id, "q": _fingerprint(query)}
    return base64.urlsafe_b64encode(json.dumps(position).encode()).decode().rstrip("=")


def read_page_token(token: str, query: FlightQuery) -> tuple[datetime, str]:
    """The position a token holds. Decoded, a token is the client's input like any field (it
    can be forged), so its flight id is checked as a request's is."""
    try:
        data = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
        time, last_id, fingerprint = data["t"], data["f"], data["q"]
        if not isinstance(last_id, str):
            raise TypeError("the flight id is not text")
        after = (datetime.fromisoformat(time), flight_id(last_id))
    except (binascii.Error, ValueError, KeyError, TypeError):
        raise BadRequest("page_token is not one this server issued") from None
    if fingerprint != _fingerprint(query) or after[0].tzinfo is None:
        raise BadRequest("page_token belongs to a different query (filters changed)")
    return after


def after_last(window: Window, last: datetime) -> Window:
    """The rest of a window after a point: timestamps have microsecond precision."""
    return Window(last + timedelta(microseconds=1), window.end)
