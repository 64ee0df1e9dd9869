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

from pipelines.drops.batches import Column, DropBatch, Rejected, frame_from_columns
from pipelines.drops.files import MAX_RECORD_BYTES, read_chunks
from pipelines.drops.wire import decode_messages
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


def _decode_framed(buf: bytearray, frames: list[tuple[int, int, int]], source: str,
                   base: int, first_record: int) -> DropBatch:
    """Decode framed messages all at once (see `wire`); the few it cannot read are parsed
    one by one by the protobuf runtime, so each bad one is rejected with its own reason."""
    view = np.frombuffer(buf, dtype=np.uint8)
    table = np.asarray(frames, dtype=np.int64).reshape(-1, 3)
    decoded = decode_messages(view, table[:, 1], table[:, 2])
    del view  # `buf` may be resized by the caller once this returns
    records = np.arange(first_record, first_record + len(frames), dtype=np.int64)
    rejected = []
    for i in np.nonzero(decoded.bad)[0]:
        pos, start, end = frames[i]
        payload = bytes(buf[start:end])
        try:
            FlightData.FromString(payload)
            reason = "undecodable message: malformed field"
        except DecodeError as exc:
            reason = f"undecodable message: {exc}"
        rejected.append(Rejected(source, reason, payload[:_PREVIEW_BYTES].hex(),
                                 int(records[i]), base + pos))
    keep = ~decoded.bad
    texts = {name: array.filter(pa.array(keep)) for name, array in decoded.texts.items()}
    columns: dict[str, Column] = {
        "flight_id": texts.pop("flight_id"),
        "raw_timestamp": texts.pop("timestamp"),
        **{name: _empty_as_null(array) for name, array in texts.items()},
        **{name: values[keep] for name, values in decoded.doubles.items()},
        **{name: values[keep] for name, values in decoded.ints.items()},
        "record": records[keep],
        "byte_offset": table[keep, 0] + base,
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
    frames: list[tuple[int, int, int]] = []  # (prefix position, payload start, end) in buf
    pos = 0
    while True:
        if not eof and len(buf) - pos < MAX_RECORD_BYTES + 16:
            if frames:  # decode what buf holds before moving it
                yield _decode_framed(buf, frames, source, base, record - len(frames) + 1)
                frames = []
            del buf[:pos]
            base += pos
            pos = 0
            chunk = next(chunks, None)
            if chunk is None:
                eof = True
            else:
                buf += chunk
            continue
        if pos >= len(buf):
            break
        lost = None
        first = buf[pos]
        if first < 0x80 and pos + 1 + first <= len(buf):  # the usual: a message under 128 B
            record += 1
            frames.append((pos, pos + 1, pos + 1 + first))
            pos += 1 + first
            if len(frames) >= batch_rows:
                yield _decode_framed(buf, frames, source, base, record - len(frames) + 1)
                frames = []
            continue
        try:
            header = _varint(buf, pos)
        except ValueError:
            header, lost = None, "corrupt length prefix; rest of stream lost"
        if header is None:
            lost = lost or "truncated length prefix at end of stream"
        else:
            size, start = header
            if size > MAX_RECORD_BYTES:
                lost = (f"message declares {size} bytes, over the {MAX_RECORD_BYTES}-byte "
                        "limit; rest of stream not trusted")
            elif start + size > len(buf):
                lost = f"truncated message: {size} bytes declared, {len(buf) - start} present"
        if lost:
            if frames:
                yield _decode_framed(buf, frames, source, base, record - len(frames) + 1)
                frames = []
            preview = bytes(buf[pos:pos + _PREVIEW_BYTES]).hex()
            empty = frame_from_columns({"record": [], "raw_timestamp": []})
            yield DropBatch(source, empty, [Rejected(source, lost, preview, record + 1,
                                                     base + pos)])
            return
        record += 1
        frames.append((pos, start, start + size))
        pos = start + size
        if len(frames) >= batch_rows:
            yield _decode_framed(buf, frames, source, base, record - len(frames) + 1)
            frames = []
    if frames:
        yield _decode_framed(buf, frames, source, base, record - len(frames) + 1)
