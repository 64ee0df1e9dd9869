"""Realistic synthetic drop days for the benchmarks, written fast (numpy, no per-row Python).

A day is `flights` flights staggered over the UTC day, each reporting every `step` seconds
along a straight track, climbing then cruising; rows come in time order, as real drops arrive
(a receiver network reports all aircraft of one instant, then the next). The same rows are
written as the seed's length-delimited protobuf drop (what the pipeline reads) and as CSV
(what the COPY baseline reads).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

DAY_SECONDS = 86_400
AIRLINES = ("Swiss", "Lufthansa", "Air France", "KLM", "easyJet", "Ryanair")
AIRPORTS = ("ZRH", "FRA", "CDG", "AMS", "LGW", "DUB", "GVA", "MUC")
CSV_COLUMNS = ("flight_id", "timestamp", "latitude", "longitude", "altitude", "airspeed")


@dataclass(frozen=True)
class DayShape:
    """How many points, over how many flights, how often each flight reports."""

    rows: int
    flights: int = 9_500
    step: int = 10  # seconds between two reports of a flight
    first_id: int = 0  # flight ids are first_id, first_id + 1, ... in hex (unique per day)

    @property
    def per_flight(self) -> int:
        return max(1, -(-self.rows // self.flights))

    def starts(self) -> np.ndarray:
        """Each flight's first report, seconds into the day, spread evenly (seeded)."""
        span = max(1, DAY_SECONDS - self.per_flight * self.step)
        return np.random.default_rng(16).integers(0, span, self.flights)


@dataclass
class Batch:
    """Rows of one hour, in time order: flight index, point index along it, seconds."""

    flight: np.ndarray
    k: np.ndarray
    second: np.ndarray


def batches(shape: DayShape, hours: int = 1) -> Iterator[Batch]:
    """The day's rows an hour at a time, in time order; exactly `shape.rows` in all."""
    starts = shape.starts()
    # The last flights get fewer points so the day holds exactly `rows`.
    counts = np.full(shape.flights, shape.per_flight)
    surplus = counts.sum() - shape.rows
    counts[np.argsort(-starts, kind="stable")[: int(surplus)]] -= 1
    for low in range(0, DAY_SECONDS, hours * 3600):
        high = low + hours * 3600
        first = np.clip(-(-(low - starts) // shape.step), 0, counts)
        end = np.clip(-(-(high - starts) // shape.step), 0, counts)
        n = end - first
        flight = np.repeat(np.arange(shape.flights), n)
        k = np.arange(int(n.sum())) - np.repeat(np.cumsum(n) - n, n) + np.repeat(first, n)
        second = starts[flight] + k * shape.step
        order = np.argsort(second, kind="stable")
        yield Batch(flight[order], k[order], second[order])


def _columns(batch: Batch) -> dict[str, np.ndarray]:
    f, k = batch.flight, batch.k
    return {
        "latitude": 40.0 + (f % 200) * 0.05 + k * 0.0004,
        "longitude": -5.0 + (f % 300) * 0.05 + k * 0.0006,
        "altitude": np.minimum(36_000, 1_000 + k * 60).astype(np.int64),
        "airspeed": np.minimum(480, 150 + k).astype(np.int64),
    }


def _varint_matrix(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each non-negative value as its varint bytes: (n, 5) matrix and byte counts."""
    v = values.astype(np.uint64)
    out = np.zeros((len(v), 5), dtype=np.uint8)
    length = np.ones(len(v), dtype=np.int64)
    for i in range(5):
        byte = (v >> np.uint64(7 * i)) & np.uint64(0x7F)
        more = (v >> np.uint64(7 * (i + 1))) > 0
        out[:, i] = (byte | np.where(more, 0x80, 0).astype(np.uint64)).astype(np.uint8)
        length += more.astype(np.int64) if i < 4 else 0
    return out, length


def _text_field(number: int, text: bytes) -> bytes:
    return bytes([number << 3 | 2, len(text)]) + text


def _flight_blobs(shape: DayShape) -> tuple[np.ndarray, np.ndarray]:
    """Per flight, its id and metadata fields encoded once: padded matrix and lengths."""
    blobs = [
        _text_field(1, f"{shape.first_id + f:08x}".encode())
        + _text_field(7, AIRLINES[f % len(AIRLINES)].encode())
        + _text_field(8, f"XY{f % 9000}".encode())
        + _text_field(9, AIRPORTS[f % len(AIRPORTS)].encode())
        + _text_field(10, AIRPORTS[(f + 3) % len(AIRPORTS)].encode())
        for f in range(shape.flights)
    ]
    width = max(len(b) for b in blobs)
    matrix = np.zeros((shape.flights, width), dtype=np.uint8)
    for i, blob in enumerate(blobs):
        matrix[i, : len(blob)] = np.frombuffer(blob, dtype=np.uint8)
    return matrix, np.array([len(b) for b in blobs], dtype=np.int64)


def _timestamps(day: date, second: np.ndarray) -> np.ndarray:
    """ISO 8601 UTC text of each second of the day, as an (n, 20) byte matrix."""
    out = np.empty((len(second), 20), dtype=np.uint8)
    out[:] = np.frombuffer(f"{day.isoformat()}T00:00:00Z".encode(), dtype=np.uint8)
    digits = ord("0")
    for column, value in ((11, second // 3600), (14, second // 60 % 60), (17, second % 60)):
        out[:, column] = digits + value // 10
        out[:, column + 1] = digits + value % 10
    return out


def _encode(batch: Batch, day: date, blobs: tuple[np.ndarray, np.ndarray]) -> bytes:
    """The batch as length-delimited `FlightData` messages, all at once."""
    matrix, blob_length = blobs
    cols = _columns(batch)
    alt, alt_len = _varint_matrix(cols["altitude"])
    spd, spd_len = _varint_matrix(cols["airspeed"])
    body = blob_length[batch.flight] + 9 + 9 + 1 + alt_len + 1 + spd_len + 22
    prefix, prefix_len = _varint_matrix(body)
    total = prefix_len + body
    out = np.zeros(int(total.sum()), dtype=np.uint8)
    pos = np.concatenate([[0], np.cumsum(total)[:-1]])

    def put(piece: np.ndarray, lengths: np.ndarray | int) -> None:
        nonlocal pos
        width = np.arange(piece.shape[1])
        lengths = np.broadcast_to(lengths, pos.shape)
        mask = width[None, :] < lengths[:, None]
        out[(pos[:, None] + width[None, :])[mask]] = piece[mask]
        pos = pos + lengths

    def tagged(tag: int, payload: np.ndarray) -> np.ndarray:
        return np.hstack([np.full((len(payload), 1), tag, dtype=np.uint8), payload])

    put(prefix, prefix_len)
    put(matrix[batch.flight], blob_length[batch.flight])
    put(tagged(0x11, cols["latitude"].astype("<f8").view(np.uint8).reshape(-1, 8)), 9)
    put(tagged(0x19, cols["longitude"].astype("<f8").view(np.uint8).reshape(-1, 8)), 9)
    put(tagged(0x20, alt), alt_len + 1)
    put(tagged(0x28, spd), spd_len + 1)
    put(
        np.hstack(
            [np.tile([0x32, 20], (len(body), 1)).astype(np.uint8), _timestamps(day, batch.second)]
        ),
        22,
    )
    return out.tobytes()


def _csv_table(batch: Batch, day: date, first_id: int) -> pa.Table:
    cols = _columns(batch)
    midnight = np.datetime64(day.isoformat(), "s")
    stamps = pa.array(midnight + batch.second.astype("timedelta64[s]"), pa.timestamp("s"))
    ids = pa.array([f"{first_id + f:08x}" for f in range(int(batch.flight.max()) + 1)])
    return pa.table(
        {
            "flight_id": ids.take(pa.array(batch.flight)),
            "timestamp": pc.strftime(stamps, format="%Y-%m-%dT%H:%M:%SZ"),
            "latitude": cols["latitude"],
            "longitude": cols["longitude"],
            "altitude": cols["altitude"],
            "airspeed": cols["airspeed"],
        }
    )


def write_day(shape: DayShape, day: date, drop: Path, rows_csv: Path | None = None) -> int:
    """Write the day's protobuf drop (and, if asked, the same rows as CSV); returns rows."""
    drop.parent.mkdir(parents=True, exist_ok=True)
    blobs = _flight_blobs(shape)
    written = 0
    writer: pacsv.CSVWriter | None = None
    with drop.open("wb") as out:
        for batch in batches(shape):
            if not len(batch.flight):
                continue
            out.write(_encode(batch, day, blobs))
            written += len(batch.flight)
            if rows_csv is not None:
                table = _csv_table(batch, day, shape.first_id)
                if writer is None:
                    options = pacsv.WriteOptions(include_header=False, quoting_style="none")
                    writer = pacsv.CSVWriter(str(rows_csv), table.schema, write_options=options)
                writer.write_table(table)
    if writer is not None:
        writer.close()
    return written
