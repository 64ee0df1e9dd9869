"""The seed's `FlightData` fields as JSON Lines (`*.jsonl`), one object per line.

Field names are the proto's; a field at its proto default may be absent and then takes that
default, as it would in the protobuf drop. A line that is not a JSON object, has a field of the
wrong type, or is longer than the record limit is rejected with its line number.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any, BinaryIO

from pipelines.drops.batches import DropBatch, frame_from_columns
from pipelines.drops.stream import MAX_RECORD_BYTES, read_chunks
from pipelines.flights.records import Rejected

_NUMBERS = {"latitude": 0.0, "longitude": 0.0, "altitude": 0, "airspeed": 0}
_TEXTS = ("flight_id", "airline", "flight_number", "departure_airport", "arrival_airport")
_PREVIEW_CHARS = 1024


def _lines(stream: BinaryIO) -> Iterator[tuple[int, int, bytes | None]]:
    """(line number, byte offset, line) per line; None stands for a line over the limit,
    which is skipped without being held in memory."""
    number = line_start = consumed = 0
    pending = bytearray()
    oversized = False
    for chunk in read_chunks(stream, 1 << 20):
        start = 0
        while True:
            newline = chunk.find(b"\n", start)
            if newline < 0:
                if not oversized:
                    pending += chunk[start:]
                    oversized = len(pending) > MAX_RECORD_BYTES
                    if oversized:
                        pending.clear()
                break
            number += 1
            if not oversized:
                pending += chunk[start:newline]
            yield number, line_start, None if oversized else bytes(pending)
            pending.clear()
            oversized = False
            line_start = consumed + newline + 1
            start = newline + 1
        consumed += len(chunk)
    if pending or oversized:
        yield number + 1, line_start, None if oversized else bytes(pending)


class _JsonNumber(str):
    """A JSON number with a fraction or an exponent, as written: epoch seconds through a
    float would keep about a quarter of a microsecond and could end in another microsecond."""


def _decode(line: bytes) -> tuple[dict[str, Any] | None, str | None]:
    try:
        obj = json.loads(line, parse_float=_JsonNumber)
    except (ValueError, UnicodeDecodeError) as exc:
        return None, f"not valid JSON: {exc}"
    except RecursionError:
        return None, "not valid JSON: nested too deeply"
    if not isinstance(obj, dict):
        return None, "not a JSON object"
    for name in _NUMBERS:
        value = obj.get(name)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int | float | _JsonNumber):
            return None, f"{name} is not a number"
        try:
            obj[name] = float(value)
        except OverflowError:
            return None, f"{name}: number too large ({str(value)[:40]}...)"
    for name in (*_TEXTS, "timestamp"):
        value = obj.get(name)
        if value is None:
            continue
        if isinstance(value, str) and not isinstance(value, _JsonNumber):
            if not value.isascii() and not _encodable(value):
                return None, f"{name}: not valid Unicode (a lone surrogate escape)"
            continue
        number = isinstance(value, int | float | _JsonNumber) and not isinstance(value, bool)
        if name == "timestamp" and number:
            obj[name] = str(value)  # epoch seconds written as a JSON number, digits as written
            continue
        return None, f"{name} is not a string"
    return obj, None


def _encodable(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def read_jsonl(stream: BinaryIO, source: str, batch_rows: int) -> Iterator[DropBatch]:
    columns: dict[str, list[Any]] = {}
    rejected: list[Rejected] = []

    def reset() -> None:
        columns.clear()
        columns.update(
            {name: [] for name in (*_NUMBERS, *_TEXTS)}, raw_timestamp=[], record=[], byte_offset=[]
        )
        rejected.clear()

    reset()
    for number, offset, line in _lines(stream):
        if line is None:
            rejected.append(
                Rejected(source, f"line longer than {MAX_RECORD_BYTES} bytes", None, number, offset)
            )
            continue
        if not line.strip():
            continue
        obj, problem = _decode(line)
        if obj is None:
            preview = line[:_PREVIEW_CHARS].decode("utf-8", "replace")
            rejected.append(Rejected(source, problem or "unreadable", preview, number, offset))
            continue
        for name, default in _NUMBERS.items():
            columns[name].append(obj.get(name, default))
        for name in _TEXTS:
            columns[name].append(obj.get(name) or (None if name != "flight_id" else ""))
        columns["raw_timestamp"].append(obj.get("timestamp", ""))
        columns["record"].append(number)
        columns["byte_offset"].append(offset)
        if len(columns["record"]) >= batch_rows:
            yield DropBatch(source, frame_from_columns(columns), list(rejected))
            reset()
    if columns["record"] or rejected:
        yield DropBatch(source, frame_from_columns(columns), list(rejected))
