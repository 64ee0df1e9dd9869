"""The seed's `flight.FlightData` as a varint-length-delimited stream (`*.pb`).

The stream is read in chunks, so memory stays bounded whatever the file size. A message that
does not decode is rejected and the stream goes on (its length prefix still frames it); a
length prefix that is truncated, malformed or over the size limit means the framing itself is
lost, so the rest of the stream is rejected as one record with its byte offset.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import BinaryIO

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from google.protobuf.message import DecodeError

from pipelines.drops.batches import Column, DropBatch, frame_from_columns
from pipelines.drops.stream import MAX_RECORD_BYTES, read_chunks
from pipelines.drops.wire import decode_messages, varints
from pipelines.flights.records import Rejected
from pipelines.proto.flight_pb2 import FlightData

_PREVIEW_BYTES = 256


def _varint(buf: bytes | bytearray, pos: int) -> tuple[int, int] | None:
    """(value, next position), or None when the buffer ends inside the varint."""
    result = shift = 0
    end = len(buf)
    while pos < end:
        byte = buf[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7
        if shift > 63:
            raise ValueError("varint longer than 10 bytes")
    return None


def _decode_framed(
    buf: bytearray, prefixes: list[int], ends: list[int], source: str, base: int, first_record: int
) -> DropBatch:
    """Decode framed messages all at once (see `wire`); the few it cannot read are parsed
    one by one by the protobuf runtime, so each bad one is rejected with its own reason."""
    view = np.frombuffer(buf, dtype=np.uint8)
    at = np.asarray(prefixes, dtype=np.int64)
    stop = np.asarray(ends, dtype=np.int64)
    _, starts, _ = varints(view, at, stop)  # payloads begin after the length prefix
    decoded = decode_messages(view, starts, stop)
    del view  # `buf` may be resized by the caller once this returns
    records = np.arange(first_record, first_record + len(at), dtype=np.int64)
    rejected = []
    for i in np.nonzero(decoded.bad)[0]:
        payload = bytes(buf[starts[i] : stop[i]])
        try:
            FlightData.FromString(payload)
            reason = "undecodable message: malformed field"
        except DecodeError as exc:
            reason = f"undecodable message: {exc}"
        rejected.append(
            Rejected(
                source, reason, payload[:_PREVIEW_BYTES].hex(), int(records[i]), base + int(at[i])
            )
        )
    keep = ~decoded.bad
    texts = {name: array.filter(pa.array(keep)) for name, array in decoded.texts.items()}
    columns: dict[str, Column] = {
        "flight_id": texts.pop("flight_id"),
        "raw_timestamp": texts.pop("timestamp"),
        **{name: _empty_as_null(array) for name, array in texts.items()},
        **{name: values[keep] for name, values in decoded.doubles.items()},
        **{name: values[keep] for name, values in decoded.ints.items()},
        "record": records[keep],
        "byte_offset": at[keep] + base,
    }
    return DropBatch(source, frame_from_columns(columns), rejected)


def _empty_as_null(array: pa.StringArray) -> pa.Array:
    """proto3 writes no empty strings: an absent metadata field is unknown, not ''."""
    return pc.if_else(pc.equal(array, ""), pa.scalar(None, pa.string()), array)


def read_protobuf(stream: BinaryIO, source: str, batch_rows: int) -> Iterator[DropBatch]:
    buf = bytearray()
    base = 0  # file offset of buf[0]
    record = 0  # messages framed so far
    chunks = read_chunks(stream)
    eof = False
    prefixes: list[int] = []  # where each framed message's length prefix is in buf
    ends: list[int] = []
    pos = 0

    def batch() -> DropBatch:
        framed = _decode_framed(buf, prefixes, ends, source, base, record - len(prefixes) + 1)
        prefixes.clear()
        ends.clear()
        return framed

    while True:
        n = len(buf)
        # Until the end of the stream, keep a whole maximal record ahead of `pos`.
        limit = n if eof else n - MAX_RECORD_BYTES - 16
        if pos >= limit and not eof:
            if prefixes:  # decode what buf holds before moving it
                yield batch()
            del buf[:pos]
            base += pos
            pos = 0
            chunk = next(chunks, None)
            eof = chunk is None
            buf += chunk or b""
            continue
        # Framing is sequential, so it stays a plain loop, kept as small as it can be for
        # the usual case: a one-byte length prefix and the whole message in the buffer.
        before = len(prefixes)
        room = batch_rows - before
        while pos < limit and room:
            size = buf[pos]
            end = pos + 1 + size
            if size & 0x80 or end > n:
                break
            prefixes.append(pos)
            ends.append(end)
            pos = end
            room -= 1
        record += len(prefixes) - before
        if not room:
            yield batch()
            continue
        if pos >= n:
            break
        if pos >= limit:
            continue
        lost = None
        try:
            header = _varint(buf, pos)
        except ValueError:
            header, lost = None, "corrupt length prefix; rest of stream lost"
        if header is None:
            lost = lost or "truncated length prefix at end of stream"
        else:
            size, start = header
            if size > MAX_RECORD_BYTES:
                lost = (
                    f"message declares {size} bytes, over the {MAX_RECORD_BYTES}-byte "
                    "limit; rest of stream not trusted"
                )
            elif start + size > n:
                lost = f"truncated message: {size} bytes declared, {n - start} present"
        if lost:
            if prefixes:
                yield batch()
            preview = bytes(buf[pos : pos + _PREVIEW_BYTES]).hex()
            empty = frame_from_columns({"record": [], "raw_timestamp": []})
            yield DropBatch(
                source, empty, [Rejected(source, lost, preview, record + 1, base + pos)]
            )
            return
        record += 1
        prefixes.append(pos)
        ends.append(start + size)
        pos = start + size
    if prefixes:
        yield batch()
