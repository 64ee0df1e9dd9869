"""The seed's `flight.FlightData` as a varint-length-delimited stream (`*.pb`).

The stream is read in chunks, so memory stays bounded whatever the file size. A message that
does not decode is rejected and the stream goes on (its length prefix still frames it); a
length prefix that is truncated, malformed or over the size limit means the framing itself is
lost, so the rest of the stream is rejected as one record with its byte offset.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import BinaryIO

from google.protobuf.message import DecodeError

from pipelines.drops.batches import DropBatch, Rejected, frame_from_columns
from pipelines.drops.files import MAX_RECORD_BYTES, read_chunks
from pipelines.proto.flight_pb2 import FlightData, FlightDataResponse

_TAG = b"\x0a"  # field 1, length-delimited: `repeated FlightData data = 1` of the response
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


def _columns(messages: list, offsets: list[int], records: list[int]) -> dict[str, list]:
    data: dict[str, list] = {
        name: [getattr(m, name) for m in messages]
        for name in ("flight_id", "latitude", "longitude", "altitude", "airspeed")
    }
    for name in ("airline", "flight_number", "departure_airport", "arrival_airport"):
        data[name] = [getattr(m, name) or None for m in messages]
    data["raw_timestamp"] = [m.timestamp for m in messages]
    data["record"] = records
    data["byte_offset"] = offsets
    return data


def _decode_framed(buf: bytearray, frames: list[tuple[int, int, int]], source: str,
                   base: int, first_record: int) -> DropBatch:
    """Decode framed messages in one C-level parse: a length-delimited stream becomes a
    `repeated FlightData` field (field 1) by putting the field's tag byte before each frame.
    Only when that fails are messages parsed one by one, to reject just the bad ones."""
    container = b"".join(_TAG + buf[pos:end] for pos, _, end in frames)
    try:
        messages = list(FlightDataResponse.FromString(container).data)
        offsets = [base + pos for pos, _, _ in frames]
        records = list(range(first_record, first_record + len(frames)))
        return DropBatch(source, frame_from_columns(_columns(messages, offsets, records)))
    except DecodeError:
        pass
    messages, offsets, records, rejected = [], [], [], []
    for number, (pos, start, end) in enumerate(frames, start=first_record):
        payload = bytes(buf[start:end])
        try:
            messages.append(FlightData.FromString(payload))
        except DecodeError as exc:
            rejected.append(Rejected(source, f"undecodable message: {exc}",
                                     payload[:_PREVIEW_BYTES].hex(), number, base + pos))
            continue
        offsets.append(base + pos)
        records.append(number)
    return DropBatch(source, frame_from_columns(_columns(messages, offsets, records)), rejected)


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
