"""Helpers for the API tests: a real server on port 0, tracks written fast, certificates,
and the seed's own generated code."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import grpc

from pipelines.api.config import ApiConfig
from pipelines.api.server import RunningServer, start
from pipelines.proto import flight_pb2_grpc
from pipelines.warehouse.aggregates import refresh_aggregates
from pipelines.warehouse.connection import connect
from pipelines.warehouse.editions import edition

ROOT = Path(__file__).resolve().parents[2]
SEED_PROTO = ROOT / "tests" / "seed" / "flight_data.proto"
SEED_CLIENT = Path(__file__).with_name("seed_client.py")


def config(url: str, **overrides: Any) -> ApiConfig:
    """The server's defaults on an ephemeral port. The licensed edition is tested on the
    PGlite server, which serves one client at a time: one pooled connection there."""
    base = ApiConfig(database_url=url, port=0)
    with connect(url) as conn:
        if edition(conn) == "timescale":
            base = replace(base, pool_size=1)
    return replace(base, **overrides)


@contextmanager
def serving(url: str, **overrides: Any) -> Iterator[RunningServer]:
    running = start(config(url, **overrides))
    try:
        yield running
    finally:
        running.stop(0)


@contextmanager
def stub_for(
    port: int, *, credentials: grpc.ChannelCredentials | None = None
) -> Iterator[flight_pb2_grpc.FlightDataServiceStub]:
    target = f"127.0.0.1:{port}"
    options = [("grpc.max_receive_message_length", 64 * 1024 * 1024)]
    channel = (
        grpc.secure_channel(target, credentials, options=options)
        if credentials
        else grpc.insecure_channel(target, options=options)
    )
    with channel:
        yield flight_pb2_grpc.FlightDataServiceStub(channel)


def add_flight(
    url: str,
    flight_id: str,
    start: datetime,
    points: int,
    *,
    step: timedelta = timedelta(seconds=1),
    latitude: float = 45.0,
    longitude: float = 7.0,
    airline: str | None = "Test Air",
    flight_number: str | None = "TA1",
    departure: str | None = "GVA",
    arrival: str | None = "LHR",
) -> None:
    """A straight track written by the server itself (generate_series): a million points
    take seconds. Altitude climbs 1 ft per point; every 7th point lacks altitude and speed."""
    with connect(url) as conn:
        conn.execute(
            """
            INSERT INTO flight_data (flight_id, "timestamp", latitude, longitude, altitude,
                                     airspeed, track, vertical_rate, on_ground)
            SELECT %(id)s, %(start)s + i * %(step)s, %(lat)s + i * 1e-5, %(lon)s + i * 1e-5,
                   CASE WHEN i %% 7 = 6 THEN NULL ELSE i %% 40000 END,
                   CASE WHEN i %% 7 = 6 THEN NULL ELSE 250 + i %% 200 END,
                   (i %% 360)::real, CASE WHEN i %% 2 = 0 THEN 64 ELSE NULL END, i = 0
            FROM generate_series(0, %(n)s - 1) AS i
            """,
            {
                "id": flight_id,
                "start": start,
                "step": step,
                "lat": latitude,
                "lon": longitude,
                "n": points,
            },
        )
        conn.execute(
            "INSERT INTO flight_metadata (flight_id, airline, flight_number, departure_airport,"
            " arrival_airport) VALUES (%s, %s, %s, %s, %s)",
            (flight_id, airline, flight_number, departure, arrival),
        )
        conn.commit()


def refresh(url: str, start: datetime, end: datetime) -> None:
    with connect(url, autocommit=True) as conn:
        refresh_aggregates(conn, start, end)


def self_signed(directory: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 and localhost, and its key."""
    cert, key = directory / "server.crt", directory / "server.key"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-keyout",
            str(key),
            "-out",
            str(cert),
            "-days",
            "1",
            "-subj",
            "/CN=localhost",
            "-addext",
            "subjectAltName=IP:127.0.0.1,DNS:localhost",
        ],
        check=True,
        capture_output=True,
    )
    return cert, key


def generate_seed_code(directory: Path) -> Path:
    """The seed's .proto compiled as the seed's users would have: nothing of ours inside."""
    subprocess.run(
        [
            sys.executable,
            "-m",
            "grpc_tools.protoc",
            f"-I{SEED_PROTO.parent}",
            f"--python_out={directory}",
            f"--grpc_python_out={directory}",
            SEED_PROTO.name,
        ],
        check=True,
        capture_output=True,
    )
    return directory


def run_seed_client(code: Path, port: int, flight_id: str) -> subprocess.CompletedProcess[str]:
    """The seed's client in its own process (its messages share names with ours)."""
    return subprocess.run(
        [sys.executable, str(SEED_CLIENT), str(code), f"127.0.0.1:{port}", flight_id],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=code,
    )
