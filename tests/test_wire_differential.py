"""The protobuf reader against the official `protobuf` parser of the seed's `FlightData`.

Generated wire bytes (fields in any order, repeated, unknown fields of every wire type with
groups nested or broken, known fields with the wrong wire type, lengths and varints that
overflow, field numbers around 2**29, tags written longer than they need) are framed into a
stream; the reader must accept exactly the messages the official parser accepts, with the
same values, and reject the others one by one while the stream goes on.
"""

from __future__ import annotations

import io
import math
import os

import pandas as pd
import pytest
from google.protobuf.message import DecodeError
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipelines.drops.protobuf import read_protobuf
from pipelines.drops.wire import DOUBLE_FIELDS, INT32_FIELDS, TEXT_FIELDS
from pipelines.proto.flight_pb2 import FlightData

# A release check raises this (see the README); the default keeps the run to a few seconds.
EXAMPLES = int(os.environ.get("FLIGHTS_FUZZ_EXAMPLES", "100"))
KNOWN = sorted({**TEXT_FIELDS, **DOUBLE_FIELDS, **INT32_FIELDS})


def varint(value: int, padding: int = 0) -> bytes:
    """`value` as a varint, written `padding` bytes longer than it needs (still decodable
    up to 10 bytes; longer is what the parsers must refuse)."""
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            break
    if padding:
        out[-1] |= 0x80
        out += b"\x80" * (padding - 1) + b"\x00"
    return bytes(out)


def tag(number: int, wire: int, padding: int = 0) -> bytes:
    return varint((number << 3) | wire, padding)


field_numbers = st.one_of(
    st.sampled_from(KNOWN),
    st.integers(0, 20),
    st.integers(16, 2047),
    st.sampled_from([(1 << 29) - 1, 1 << 29, (1 << 29) + 1, (1 << 32) - 1, 1 << 32]),
    st.integers(0, (1 << 35)),
)
paddings = st.one_of(st.just(0), st.just(0), st.integers(0, 10))
varint_values = st.one_of(
    st.integers(0, 200),
    st.integers(-(1 << 31), (1 << 31) - 1).map(lambda v: v & ((1 << 64) - 1)),
    st.integers(0, (1 << 64) - 1),
    st.integers(1 << 64, 1 << 72),  # wider than 64 bits
)
texts = st.one_of(st.text(max_size=20).map(lambda t: t.encode()), st.binary(max_size=20))


@st.composite
def wire_field(draw: st.DrawFn, depth: int = 0) -> bytes:
    """One field (or something shaped like one) as wire bytes."""
    number = draw(field_numbers)
    wire = draw(st.integers(0, 7))
    if number in KNOWN and draw(st.booleans()):
        wire = 2 if number in TEXT_FIELDS else 1 if number in DOUBLE_FIELDS else 0
    head = tag(number, wire, draw(paddings))
    if wire == 0:
        return head + varint(draw(varint_values), draw(paddings))
    if wire == 1:
        return head + draw(st.binary(min_size=8, max_size=8))
    if wire == 5:
        return head + draw(st.binary(min_size=4, max_size=4))
    if wire == 2:
        body = draw(texts)
        declared = draw(
            st.one_of(
                st.just(len(body)),
                st.just(len(body)),
                st.integers(0, len(body) + 4),
                st.sampled_from([(1 << 63) - 1, 1 << 63, (1 << 64) - 1, (1 << 64) - len(body)]),
            )
        )
        return head + varint(declared, draw(paddings)) + body
    if wire == 3:
        inner = b""
        if depth < 3:
            inner = b"".join(draw(st.lists(wire_field(depth + 1), max_size=3)))
        end = draw(st.sampled_from([number, number, number + 1, None]))
        return head + inner + (b"" if end is None else tag(end, 4))
    return head + draw(st.binary(max_size=3))  # wire 4 alone, or the invalid 6 and 7


def valid_field() -> st.SearchStrategy[bytes]:
    """A field of the seed message written as an ordinary encoder writes it."""
    return st.one_of(
        st.builds(
            lambda n, t: tag(n, 2) + varint(len(t)) + t,
            st.sampled_from(sorted(TEXT_FIELDS)),
            st.text(max_size=16).map(lambda s: s.encode()),
        ),
        st.builds(
            lambda n, b: tag(n, 1) + b,
            st.sampled_from(sorted(DOUBLE_FIELDS)),
            st.binary(min_size=8, max_size=8),
        ),
        st.builds(
            lambda n, v: tag(n, 0) + varint(v & ((1 << 64) - 1)),
            st.sampled_from(sorted(INT32_FIELDS)),
            st.integers(-(1 << 31), (1 << 31) - 1),
        ),
    )


payloads = st.one_of(
    st.lists(valid_field(), max_size=12).map(b"".join),
    st.lists(st.one_of(valid_field(), wire_field()), max_size=8).map(b"".join),
    st.lists(valid_field(), min_size=60, max_size=80).map(b"".join),  # more than 64 fields
    st.binary(max_size=40),
)


def read_stream(messages: list[bytes], batch_rows: int) -> tuple[pd.DataFrame, dict[int, str]]:
    stream = b"".join(varint(len(m)) + m for m in messages)
    frames, rejected = [], {}
    for batch in read_protobuf(io.BytesIO(stream), "x.pb", batch_rows):
        frames.append(batch.frame)
        rejected.update({r.line: r.reason for r in batch.rejected})
    frame = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame({"record": []})
    return frame.set_index("record"), rejected


def same_float(stored: object, official: float) -> bool:
    if math.isnan(official):
        return bool(pd.isna(stored))
    return bool(stored == official) and math.copysign(1, float(stored)) == math.copysign(
        1, official
    )


def assert_agrees(messages: list[bytes], batch_rows: int) -> None:
    frame, rejected = read_stream(messages, batch_rows)
    assert len(frame) + len(rejected) == len(messages)
    for record, payload in enumerate(messages, start=1):
        try:
            official = FlightData.FromString(payload)
        except DecodeError:
            assert record in rejected, f"accepted what the official parser refuses: {payload!r}"
            assert rejected[record].startswith("undecodable message: ")
            continue
        assert record not in rejected, f"refused {payload!r}: {rejected.get(record)}"
        row = frame.loc[record]
        assert row["flight_id"] == official.flight_id
        assert row["raw_timestamp"] == official.timestamp
        for name in ("airline", "flight_number", "departure_airport", "arrival_airport"):
            assert (None if pd.isna(row[name]) else row[name]) == (getattr(official, name) or None)
        for name in DOUBLE_FIELDS.values():
            assert same_float(row[name], getattr(official, name)), (name, payload)
        for name in INT32_FIELDS.values():
            assert row[name] == getattr(official, name), (name, payload)


@settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(
    messages=st.lists(payloads, min_size=1, max_size=12), batch_rows=st.sampled_from([1, 5, 1000])
)
def test_the_decoder_accepts_exactly_what_the_official_parser_accepts(
    messages: list[bytes], batch_rows: int
) -> None:
    assert_agrees(messages, batch_rows)


@pytest.mark.parametrize(
    "payload",
    [
        tag(11, 2) + varint((1 << 64) - 1) + b"x",  # a length near 2**64 (wrapped before)
        tag(1, 2) + varint((1 << 63) + 5) + b"abc",
        tag(12, 3) * 100 + tag(12, 4) * 100,  # groups as deep as the runtime allows
        tag(12, 3) * 101 + tag(12, 4) * 101,  # one deeper
        tag(12, 3) + tag(13, 4),  # a group closed by another field's end
        tag(12, 4),
        tag(4, 1) + bytes(8),  # a known field with the wrong wire type: an unknown field
        tag(4, 0) + varint(5) + tag(4, 0, padding=4) + varint(7),  # repeated, longer tag
        tag(4, 0, padding=5) + varint(7),  # a tag of 6 bytes
        tag((1 << 29) - 1, 0) + varint(1),
        tag(1 << 29, 0) + varint(1),
        tag(4, 0) + b"\xff" * 9 + b"\x7f",  # a 10-byte varint with high bits set
        tag(4, 0) + b"\xff" * 10 + b"\x01",  # an 11-byte varint
        b"".join(tag(4, 0) + varint(i) for i in range(200)),  # 200 fields, the last wins
        tag(1, 2) + varint(2) + b"\xc3\x28",  # invalid UTF-8 in a known text field
        tag(11, 2) + varint(2) + b"\xc3\x28",  # ... and in an unknown one
        tag(0, 0) + varint(1),
        tag(11, 6),
        tag(11, 7),
    ],
)
def test_decoder_edges_agree_with_the_official_parser(payload: bytes) -> None:
    good = FlightData(flight_id="a1", timestamp="2024-03-01T00:00:00Z").SerializeToString()
    assert_agrees([good, payload, good], batch_rows=1000)
