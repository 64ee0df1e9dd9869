"""Builders of drop files for tests: seed-format messages, framing, gzip, corruption."""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterable
from pathlib import Path

from google.protobuf.internal.encoder import _VarintBytes

from pipelines.proto.flight_pb2 import FlightData


def message(i: int, flight_id: str = "abc123", **fields: object) -> FlightData:
    base: dict[str, object] = {
        "flight_id": flight_id,
        "latitude": 45.0 + i * 0.001,
        "longitude": 7.0 + i * 0.001,
        "altitude": 30000 + i,
        "airspeed": 450,
        "airline": "Test Air",
        "flight_number": "TA1",
        "departure_airport": "GVA",
        "arrival_airport": "LHR",
        "timestamp": f"2024-03-01T10:{i // 60 % 60:02d}:{i % 60:02d}Z",
    }
    base.update(fields)
    return FlightData(**base)  # type: ignore[arg-type]


def framed(messages: Iterable[FlightData]) -> bytes:
    out = bytearray()
    for m in messages:
        payload = m.SerializeToString()
        out += _VarintBytes(len(payload)) + payload
    return bytes(out)


def write_pb(path: Path, messages: Iterable[FlightData], *, gz: bool = False) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    data = framed(messages)
    path.write_bytes(gzip.compress(data) if gz else data)
    return path


def write_jsonl(path: Path, records: Iterable[dict | str]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = [r if isinstance(r, str) else json.dumps(r) for r in records]
    path.write_text("\n".join(lines) + "\n")
    return path


def synthetic_day(n: int, day: str = "2024-03-01", flights: int = 2000) -> Iterable[FlightData]:
    """`n` plausible position reports spread over `flights` flights of one day: each flight
    reports every few seconds along a great-circle-ish line, climbing then cruising."""
    per_flight = max(1, n // flights)
    airlines = ["Swiss", "Lufthansa", "Air France", "KLM", "easyJet", "Ryanair"]
    for i in range(n):
        f, k = divmod(i, per_flight)
        seconds = (f * 37 + k * 4) % 86_400
        yield FlightData(
            flight_id=f"{f:08x}",
            latitude=40.0 + (f % 200) * 0.05 + k * 0.0004,
            longitude=-5.0 + (f % 300) * 0.05 + k * 0.0006,
            altitude=min(36_000, 1_000 + k * 60),
            airspeed=min(480, 150 + k),
            timestamp=f"{day}T{seconds // 3600:02d}:{seconds // 60 % 60:02d}:{seconds % 60:02d}Z",
            airline=airlines[f % len(airlines)],
            flight_number=f"XY{f % 9000}",
            departure_airport="ZRH",
            arrival_airport="LHR",
        )
