"""A vectorised decoder for the seed's flat `FlightData` message (numpy over whole batches).

Calling the protobuf runtime once per message and reading ten attributes costs several
microseconds a row in Python; this walks every message of a batch at once, field by field,
so a batch of 100,000 messages is a few dozen numpy operations. It understands exactly the
proto3 wire format of the usual message: one-byte tags, varints, 64-bit and 32-bit fixed
values, length-delimited fields, unknown fields of those wire types. Anything else (a longer
tag, a group, a known field with another wire type, more fields than `_MAX_FIELDS_PER_MESSAGE`,
a length running past its message, invalid UTF-8) flags the message; the caller hands the
flagged ones to the protobuf runtime, which accepts or rejects each as the official parser does.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa

# field number -> (name, wire type) of the seed's message
TEXT_FIELDS = {
    1: "flight_id",
    6: "timestamp",
    7: "airline",
    8: "flight_number",
    9: "departure_airport",
    10: "arrival_airport",
}
DOUBLE_FIELDS = {2: "latitude", 3: "longitude"}
INT32_FIELDS = {4: "altitude", 5: "airspeed"}
_MAX_FIELDS_PER_MESSAGE = 64


@dataclass
class DecodedBatch:
    texts: dict[str, pa.StringArray]  # "" where the field was absent (proto3 default)
    doubles: dict[str, np.ndarray]
    ints: dict[str, np.ndarray]
    flagged: np.ndarray  # bool per message: not decoded here, for the protobuf runtime


def varints(
    buf: np.ndarray, pos: np.ndarray, limit: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(values, next positions, ok) of the varints starting at `pos` (each below `limit`)."""
    value = np.zeros(len(pos), dtype=np.uint64)
    done = np.zeros(len(pos), dtype=bool)
    ok = np.ones(len(pos), dtype=bool)
    cur = pos.copy()
    for i in range(10):
        live = ~done & ok
        if not live.any():
            break
        inside = cur < limit
        ok &= ~live | inside
        live &= inside
        byte = np.zeros(len(pos), dtype=np.uint64)
        byte[live] = buf[cur[live]]
        value |= np.where(live, (byte & 0x7F) << np.uint64(7 * i), 0).astype(np.uint64)
        finished = live & (byte < 0x80)
        done |= finished
        cur += live.astype(np.int64)
    ok &= done
    return value, cur, ok


def _small_varints(
    buf: np.ndarray, pos: np.ndarray, limit: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """`varints`, with a fast path for the usual case: every value fits in one byte."""
    inside = pos < limit
    if inside.all():
        first = buf[pos]
        if (first < 0x80).all():
            return first.astype(np.uint64), pos + 1, inside
    return varints(buf, pos, limit)


def _texts(buf: np.ndarray, start: np.ndarray, length: np.ndarray) -> pa.StringArray:
    """Gather byte ranges into one Arrow string array (zero length for absent fields)."""
    length = np.where(start < 0, 0, length)
    offsets = np.zeros(len(length) + 1, dtype=np.int32)
    np.cumsum(length, out=offsets[1:])
    total = int(offsets[-1])
    if total:
        shift = np.repeat(start - offsets[:-1], length)
        data = buf[np.arange(total, dtype=np.int64) + shift]
    else:
        data = np.zeros(0, dtype=np.uint8)
    return pa.StringArray.from_buffers(len(length), pa.py_buffer(offsets), pa.py_buffer(data))


def decode_messages(buf: np.ndarray, starts: np.ndarray, ends: np.ndarray) -> DecodedBatch:
    """Decode the messages `buf[starts[i]:ends[i]]`."""
    n = len(starts)
    cur = starts.astype(np.int64).copy()
    ends = ends.astype(np.int64)
    flagged = np.zeros(n, dtype=bool)
    text_start = {name: np.full(n, -1, dtype=np.int64) for name in TEXT_FIELDS.values()}
    text_len = {name: np.zeros(n, dtype=np.int64) for name in TEXT_FIELDS.values()}
    doubles = {name: np.zeros(n, dtype=np.float64) for name in DOUBLE_FIELDS.values()}
    ints = {name: np.zeros(n, dtype=np.int64) for name in INT32_FIELDS.values()}
    for _ in range(_MAX_FIELDS_PER_MESSAGE):
        idx = np.nonzero((cur < ends) & ~flagged)[0]
        if not len(idx):
            break
        limit = ends[idx]
        tag = buf[cur[idx]].astype(np.int64)  # inside its message: cur < ends
        pos = cur[idx] + 1
        field = tag >> 3
        wire = tag & 7
        ok = (tag < 0x80) & (field > 0)  # a longer tag (field 16 and up) is rare: flagged
        nxt = pos.copy()
        # wire type 0: varint
        w0 = ok & (wire == 0)
        val0 = np.zeros(len(idx), dtype=np.uint64)
        if w0.any():
            v, after, good = varints(buf, pos[w0], limit[w0])
            val0[w0] = v
            nxt[w0] = after
            ok[w0] &= good
        # wire type 1 and 5: fixed 8 and 4 bytes
        nxt = np.where(ok & (wire == 1), pos + 8, nxt)
        nxt = np.where(ok & (wire == 5), pos + 4, nxt)
        # wire type 2: length-delimited
        w2 = ok & (wire == 2)
        ln = np.zeros(len(idx), dtype=np.int64)
        after2 = pos.copy()
        if w2.any():
            v, after, good = _small_varints(buf, pos[w2], limit[w2])
            # Compared unsigned: a length near 2**64 must not wrap to a negative position.
            fits = good & (v <= (limit[w2] - after).astype(np.uint64))
            ln[w2] = np.where(fits, v, 0).astype(np.int64)
            after2[w2] = after
            ok[w2] &= fits
        nxt = np.where(w2, after2 + ln, nxt)
        ok &= np.isin(wire, (0, 1, 2, 5)) & (nxt <= limit)
        for number, name in DOUBLE_FIELDS.items():
            hit = ok & (field == number)
            ok &= ~hit | (wire == 1)
            sel = idx[hit & (wire == 1)]
            if len(sel):
                raw = buf[pos[hit & (wire == 1)][:, None] + np.arange(8)]
                doubles[name][sel] = raw.copy().view("<f8").ravel()
        for number, name in INT32_FIELDS.items():
            hit = ok & (field == number)
            ok &= ~hit | (wire == 0)
            sel = hit & (wire == 0)
            # int32 is sign-extended to 64 bits on the wire; keep the low 32 bits signed.
            ints[name][idx[sel]] = val0[sel].astype(np.uint32).view(np.int32)
        for number, name in TEXT_FIELDS.items():
            hit = ok & (field == number)
            ok &= ~hit | (wire == 2)
            sel = hit & (wire == 2)
            text_start[name][idx[sel]] = after2[sel]
            text_len[name][idx[sel]] = ln[sel]
        flagged[idx[~ok]] = True
        cur[idx] = np.where(ok, nxt, cur[idx])
    flagged |= cur < ends  # more fields than the usual message carries
    texts = {}
    for name in TEXT_FIELDS.values():
        array = _texts(buf, text_start[name], text_len[name])
        try:
            array.validate(full=True)  # UTF-8
        except pa.ArrowInvalid:
            flagged |= _invalid_utf8(buf, text_start[name], text_len[name])
            array = _texts(buf, np.where(flagged, -1, text_start[name]), text_len[name])
        texts[name] = array
    return DecodedBatch(texts, doubles, ints, flagged)


def _invalid_utf8(buf: np.ndarray, start: np.ndarray, length: np.ndarray) -> np.ndarray:
    out = np.zeros(len(start), dtype=bool)
    for i in np.nonzero(start >= 0)[0]:
        try:
            bytes(buf[start[i] : start[i] + length[i]]).decode("utf-8")
        except UnicodeDecodeError:
            out[i] = True
    return out


_MAX_FIELD_NUMBER = (1 << 29) - 1
_MAX_GROUP_DEPTH = 100  # the protobuf runtime's recursion limit
_FIELD_NAMES = {**TEXT_FIELDS, **DOUBLE_FIELDS, **INT32_FIELDS}


class _WireError(Exception):
    pass


def _read_varint(payload: bytes, pos: int, what: str) -> tuple[int, int]:
    value = 0
    for i in range(10):
        if pos + i >= len(payload):
            raise _WireError(f"{what}: varint runs past the end of the message")
        byte = payload[pos + i]
        value |= (byte & 0x7F) << (7 * i)
        if byte < 0x80:
            return value, pos + i + 1
    raise _WireError(f"{what}: varint longer than 10 bytes")


def _field_label(number: int) -> str:
    name = _FIELD_NAMES.get(number)
    return f"field {number} ({name})" if name else f"field {number}"


def _walk_fields(payload: bytes) -> None:
    """Walk every field, groups included; raise at the first thing the protobuf runtime
    refuses."""
    groups: list[int] = []  # open groups, innermost last
    pos = 0
    while pos < len(payload):
        start = pos
        tag, pos = _read_varint(payload, pos, f"tag at byte {start}")
        if pos - start > 5 or tag >> 32:
            raise _WireError(f"tag at byte {start} is longer than 5 bytes or over 32 bits")
        number, wire = tag >> 3, tag & 7
        label = _field_label(number)
        if not 0 < number <= _MAX_FIELD_NUMBER:
            raise _WireError(f"field number {number} at byte {start} is out of range")
        if wire == 0:
            _, pos = _read_varint(payload, pos, label)
        elif wire in (1, 5):
            pos += 8 if wire == 1 else 4
            if pos > len(payload):
                raise _WireError(f"{label}: fixed-size value runs past the end of the message")
        elif wire == 2:
            length, pos = _read_varint(payload, pos, f"{label} length")
            if length > len(payload) - pos:
                raise _WireError(
                    f"{label}: length {length} runs past the end of the message "
                    f"({len(payload) - pos} bytes left)"
                )
            if number in TEXT_FIELDS and not groups:
                try:
                    payload[pos : pos + length].decode("utf-8")
                except UnicodeDecodeError as exc:
                    raise _WireError(f"{label}: invalid UTF-8 ({exc.reason})") from exc
            pos += length
        elif wire == 3:
            groups.append(number)
            if len(groups) > _MAX_GROUP_DEPTH:
                raise _WireError(f"{label}: groups nested deeper than {_MAX_GROUP_DEPTH}")
        elif wire == 4:
            if not groups or groups.pop() != number:
                raise _WireError(f"{label}: end of a group that was not started")
        else:
            raise _WireError(f"{label}: invalid wire type {wire}")
    if groups:
        raise _WireError(f"{_field_label(groups[-1])}: group not ended")


def wire_problem(payload: bytes) -> str:
    """Why the protobuf runtime refuses this message, naming the field (for the quarantine)."""
    try:
        _walk_fields(payload)
    except _WireError as exc:
        return str(exc)
    return "malformed message"
