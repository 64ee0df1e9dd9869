"""Whatever a client sends, the API answers with a status the client can act on.

Generated requests over each field's whole domain (any Unicode text, NUL included; any
timestamp, and windows up to the first and last instants a Timestamp holds; any number and
box; page tokens garbled or forged from real ones) and generated request bytes (arbitrary,
or real requests cut and flipped) reach a real server: each gets OK, NOT_FOUND or
INVALID_ARGUMENT with a message, never INTERNAL, which would say the server is at fault. For
the bytes, the official protobuf parser is the reference: exactly the bytes it rejects are
answered as not a valid message.
"""

from __future__ import annotations

import base64
import json
import os
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import grpc
import pytest
from google.protobuf.message import DecodeError
from google.protobuf.timestamp_pb2 import Timestamp
from hypothesis import given, settings
from hypothesis import strategies as st

from pipelines.api.validation import to_timestamp as ts
from pipelines.proto import flight_pb2 as pb
from tests.api import add_flight, refresh, serving, stub_for

T0 = datetime(2024, 3, 1, 10, 0, tzinfo=UTC)
DAY = T0.replace(hour=0)
FLIGHTS = ("abc123", "zz9")
ANSWERS = {grpc.StatusCode.OK, grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.NOT_FOUND}
NOT_A_MESSAGE = "is not a valid flight."
# A release check raises it, as for the drop fuzzers (README, "Hostile-input tests").
EXAMPLES = settings(max_examples=int(os.environ.get("FLIGHTS_FUZZ_EXAMPLES", "250")), deadline=None)


@pytest.fixture
def port(apache_url: str) -> Iterator[int]:
    add_flight(apache_url, FLIGHTS[0], T0, 500)
    add_flight(apache_url, FLIGHTS[1], T0 + timedelta(hours=13), 300, longitude=179.99)
    refresh(apache_url, DAY, DAY + timedelta(days=1))
    with serving(apache_url) as server:
        yield server.port


def answer(call: Callable[[], Any]) -> tuple[grpc.StatusCode, str]:
    """The status of a call (a stream read to its end)."""
    try:
        result = call()
        if not hasattr(result, "ListFields"):
            list(result)
    except grpc.RpcError as exc:
        return exc.code(), exc.details() or ""
    return grpc.StatusCode.OK, ""


# Any Unicode a protobuf string can carry, C0 control characters favoured; and, as a class of
# its own, text with a NUL inside (valid UTF-8, but no PostgreSQL text can hold it).
short_text = st.text(st.characters(max_codepoint=0x1F) | st.characters(codec="utf-8"), max_size=6)
any_text = short_text | st.builds("{}\x00{}".format, short_text, short_text)
# Lone surrogates: JSON escapes them, UTF-8 cannot encode them.
unencodable = st.text(st.characters(categories=["Cs"]), min_size=1, max_size=3)
# Timestamps anywhere a Timestamp can say (most of them invalid) or about the stored day.
stamps = st.none() | st.builds(
    Timestamp,
    seconds=st.integers(-(2**63), 2**63 - 1)
    | st.integers(int(DAY.timestamp()) - 86_400, int(DAY.timestamp()) + 2 * 86_400),
    nanos=st.integers(-(2**31), 2**31 - 1) | st.integers(0, 999_999_999),
)
# Windows ending on the first or last day a Timestamp holds (its first and last instants
# included) or about the stored day, of every length a listing is cut at (within a minute,
# an hour, a day, up to the 31-day limit and past it): both times at once.
_US = 1_000_000
_DAY_US = 86_400 * _US
_FIRST_US, _LAST_US = -62_135_596_800 * _US, 253_402_300_800 * _US - 1
_STORED_US = int(DAY.timestamp()) * _US


def _window(end_us: int, length_us: int) -> dict[str, Timestamp]:
    start_us = max(end_us - length_us, _FIRST_US)
    return {
        name: Timestamp(seconds=us // _US, nanos=us % _US * 1000)
        for name, us in (("start_time", start_us), ("end_time", end_us))
    }


windows = st.builds(
    _window,
    st.integers(_FIRST_US + 1, _FIRST_US + _DAY_US)
    | st.integers(_LAST_US - _DAY_US, _LAST_US)
    | st.integers(_STORED_US - _DAY_US, _STORED_US + 2 * _DAY_US),
    st.sampled_from([60, 3_600, 86_400, 32 * 86_400]).flatmap(
        lambda seconds: st.integers(1, seconds * _US)
    ),
)
counts = st.integers(-(2**31), 2**31 - 1) | st.integers(0, 1_200)
degrees = st.floats() | st.floats(-180, 180)
boxes = st.none() | st.builds(
    pb.BoundingBox,
    min_latitude=degrees,
    min_longitude=degrees,
    max_latitude=degrees,
    max_longitude=degrees,
)
# Each RPC's request fields and the values a client may put there.
FIELDS: dict[str, dict[str, st.SearchStrategy[Any]]] = {
    "GetFlightData": {
        "flight_id": any_text,
        "start_time": stamps,
        "end_time": stamps,
        "max_points": counts,
    },
    "StreamFlightData": {
        "flight_id": any_text,
        "start_time": stamps,
        "end_time": stamps,
        "page_size": counts,
    },
    "ListFlights": {
        "start_time": stamps,
        "end_time": stamps,
        "airline": any_text,
        "departure_airport": any_text,
        "arrival_airport": any_text,
        "bounding_box": boxes,
        "page_size": counts,
        "page_token": any_text,
    },
    "GetFlightSummary": {"flight_id": any_text},
}
# Requests the server serves as they are: the generated values replace a few of their fields.
VALID = {
    "GetFlightData": pb.FlightDataRequest(flight_id=FLIGHTS[0], max_points=10),
    "StreamFlightData": pb.StreamFlightDataRequest(flight_id=FLIGHTS[1], page_size=50),
    "ListFlights": pb.ListFlightsRequest(
        start_time=ts(DAY),
        end_time=ts(DAY + timedelta(1)),
        airline="Test Air",
        bounding_box=pb.BoundingBox(
            min_latitude=40, min_longitude=0, max_latitude=50, max_longitude=10
        ),
    ),
    "GetFlightSummary": pb.GetFlightSummaryRequest(flight_id=FLIGHTS[0]),
}


@st.composite
def requests(draw: st.DrawFn, method: str) -> Any:
    """A valid request with one to three of its fields set to generated values."""
    fields = FIELDS[method]
    request = type(VALID[method])()
    request.CopyFrom(VALID[method])
    for name in draw(st.lists(st.sampled_from(sorted(fields)), min_size=1, max_size=3)):
        value = draw(fields[name])
        if value is None:
            request.ClearField(name)
        elif isinstance(value, Timestamp | pb.BoundingBox):
            getattr(request, name).CopyFrom(value)
        else:
            setattr(request, name, value)
    return request


@pytest.mark.apache
@pytest.mark.parametrize("method", sorted(FIELDS))
def test_requests_with_any_field_values_are_answered_never_an_internal_error(
    port: int, method: str
) -> None:
    @EXAMPLES
    @given(request=requests(method))
    def calls(request: Any) -> None:
        code, details = answer(lambda: getattr(stub, method)(request, timeout=10))
        assert code in ANSWERS, (request, code, details)
        assert code == grpc.StatusCode.OK or details, (request, code)

    with stub_for(port) as stub:
        calls()


@pytest.mark.apache
@pytest.mark.parametrize("method", ["GetFlightData", "StreamFlightData", "ListFlights"])
def test_windows_up_to_the_ends_of_time_are_answered_never_an_internal_error(
    port: int, method: str
) -> None:
    """Listings cut a window into days, hours and minutes: near the last instant a
    Timestamp holds, the next whole day is past what a datetime can hold."""

    @EXAMPLES
    @given(window=windows)
    def calls(window: dict[str, Timestamp]) -> None:
        request = type(VALID[method])()
        request.CopyFrom(VALID[method])
        for name, stamp in window.items():
            getattr(request, name).CopyFrom(stamp)
        code, details = answer(lambda: getattr(stub, method)(request, timeout=10))
        assert code in ANSWERS, (request, code, details)
        assert "both required" not in details, (request, details)

    with stub_for(port) as stub:
        calls()


def _forged(issued: str, edits: dict[str, Any]) -> str:
    """An issued token decoded, its fields replaced, encoded again."""
    fields = json.loads(base64.urlsafe_b64decode(issued + "=" * (-len(issued) % 4)))
    return base64.urlsafe_b64encode(json.dumps({**fields, **edits}).encode()).decode()


# Any JSON value, its texts from every class above.
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | any_text | unencodable,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(any_text, inner, max_size=3),
    max_leaves=6,
)
# Edits of a token's fields: its time, its last flight id, its query's fingerprint.
token_fields = st.fixed_dictionaries(
    {},
    optional={
        "t": st.datetimes(timezones=st.none() | st.timezones()).map(datetime.isoformat)
        | json_values,
        "f": st.sampled_from(FLIGHTS) | any_text | unencodable | json_values,
        "q": json_values,
    },
)


@pytest.mark.apache
def test_page_tokens_forged_from_issued_ones_are_answered_never_an_internal_error(
    port: int,
) -> None:
    """A token is base64 the client can decode and edit: what it holds is untrusted input."""
    first_page = pb.ListFlightsRequest(
        start_time=ts(DAY), end_time=ts(DAY + timedelta(1)), page_size=1
    )

    @EXAMPLES
    @given(edits=token_fields)
    def calls(edits: dict[str, Any]) -> None:
        request = pb.ListFlightsRequest()
        request.CopyFrom(first_page)
        request.page_token = _forged(issued, edits)
        code, details = answer(lambda: stub.ListFlights(request, timeout=10))
        assert code in ANSWERS, (edits, code, details)

    with stub_for(port) as stub:
        issued = stub.ListFlights(first_page, timeout=10).next_page_token
        assert issued, "the day has two flights, so a page of one has a next"
        calls()


def _mutated(data: bytes, cuts: list[int], flips: list[tuple[int, int]]) -> bytes:
    """`data` with bytes removed at `cuts` and bits flipped at `flips` (positions wrap)."""
    out = bytearray(data)
    for cut in cuts:
        if out:
            del out[cut % len(out)]
    for at, bit in flips:
        if out:
            out[at % len(out)] ^= 1 << bit
    return bytes(out)


@pytest.mark.apache
def test_request_bytes_the_parser_rejects_are_invalid_argument_and_only_those(port: int) -> None:
    channel = grpc.insecure_channel(f"127.0.0.1:{port}")

    @EXAMPLES
    @given(
        method=st.sampled_from(sorted(VALID)),
        data=st.binary(max_size=64)
        | st.builds(
            _mutated,
            st.sampled_from([m.SerializeToString() for m in VALID.values()]),
            st.lists(st.integers(0, 200), max_size=2),
            st.lists(st.tuples(st.integers(0, 200), st.integers(0, 7)), max_size=3),
        ),
    )
    def calls(method: str, data: bytes) -> None:
        try:
            type(VALID[method]).FromString(data)
            parses = True
        except DecodeError:
            parses = False
        kind = channel.unary_stream if method == "StreamFlightData" else channel.unary_unary
        call = kind(f"/flight.FlightDataService/{method}")  # bytes in, bytes out
        code, details = answer(lambda: call(data, timeout=10))
        assert code in ANSWERS, (method, data, code, details)
        assert (NOT_A_MESSAGE in details) == (not parses), (method, data, code, details)

    with channel:
        calls()
