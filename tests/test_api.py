"""The gRPC API over real databases and a real server on a real port.

Seed compatibility (the seed's generated client on a flight ingested from a real drop), each
RPC with good and bad input, authentication, TLS, deadlines and cancellation reaching the
database, a million-point stream, graceful shutdown, and the wire encoder against protobuf.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import grpc
import numpy as np
import psycopg
import pytest
from google.protobuf.timestamp_pb2 import Timestamp
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import (
    ProtoReflectionDescriptorDatabase,
)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipelines.api.server import start
from pipelines.api.validation import to_timestamp as ts
from pipelines.api.wire import computed_varints, encode_track, varints
from pipelines.ingest import ingest_partition
from pipelines.proto import flight_pb2 as pb
from pipelines.proto import flight_pb2_grpc
from pipelines.warehouse.connection import connect
from pipelines.warehouse.flight_reads import FlightMeta, FlightStore, Track
from tests.api import (
    add_flight,
    config,
    generate_seed_code,
    refresh,
    run_seed_client,
    self_signed,
    serving,
    stub_for,
)
from tests.conftest import DATA

FLIGHTS = str(Path(sys.executable).with_name("flights"))
T0 = datetime(2024, 3, 1, 10, 0, tzinfo=UTC)


def iso(value: datetime) -> str:
    return value.isoformat().replace("+00:00", "Z")


@pytest.fixture(scope="module")
def seed_code(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return generate_seed_code(tmp_path_factory.mktemp("seed"))


# -- seed compatibility -----------------------------------------------------------------------


def test_the_seed_client_prints_the_track_of_a_flight_ingested_from_a_drop(
    db_url: str, seed_code: Path
) -> None:
    ingest_partition(db_url, date(2024, 1, 2), DATA / "drops")
    drop = DATA / "drops" / "2024-01-02" / "fr24_3376ab31.jsonl"
    expected = sorted(
        (json.loads(line) for line in drop.read_text().splitlines()), key=lambda r: r["timestamp"]
    )
    with serving(db_url) as server:
        printed = run_seed_client(seed_code, server.port, "3376ab31")
        unknown = run_seed_client(seed_code, server.port, "nosuchflt")
    assert printed.returncode == 0, printed.stderr
    # Field for field the drop's own records, in time order: the same track, the same
    # metadata, ISO 8601 UTC timestamps, absent altitude/airspeed left out as the drop does.
    assert [json.loads(line) for line in printed.stdout.splitlines()] == expected
    assert (unknown.returncode, unknown.stdout.split()[0]) == (2, "NOT_FOUND")


# -- GetFlightData --------------------------------------------------------------------------


@pytest.mark.apache
def test_windows_downsampling_and_the_aggregate_after_retention(apache_url: str) -> None:
    add_flight(apache_url, "win", T0, 1000)
    with serving(apache_url, max_points=500) as server, stub_for(server.port) as stub:
        window = stub.GetFlightData(
            pb.FlightDataRequest(
                flight_id="win",
                start_time=ts(T0 + timedelta(seconds=10)),
                end_time=ts(T0 + timedelta(seconds=20)),
            )
        )
        assert [p.timestamp for p in window.flight_data] == [
            iso(T0 + timedelta(seconds=s)) for s in range(10, 20)
        ]
        assert (window.resolution, window.stored_points) == (pb.RESOLUTION_RAW, 10)
        assert (
            window.flight_data[0].airline == "Test Air"
            and window.flight_data[0].arrival_airport == "LHR"
        )
        # Optional fields: present when stored, absent (not 0) when not.
        first = window.flight_data[0]
        assert first.track == 10.0 and first.vertical_rate == 64 and not first.on_ground
        assert not window.flight_data[1].HasField("vertical_rate")

        open_end = stub.GetFlightData(
            pb.FlightDataRequest(flight_id="win", start_time=ts(T0 + timedelta(seconds=995)))
        )
        assert len(open_end.flight_data) == 5

        even = stub.GetFlightData(pb.FlightDataRequest(flight_id="win", max_points=100))
        assert (even.resolution, even.stored_points, len(even.flight_data)) == (
            pb.RESOLUTION_EVEN,
            1000,
            100,
        )
        seconds = [
            int((datetime.fromisoformat(p.timestamp) - T0).total_seconds())
            for p in even.flight_data
        ]
        assert seconds[0] == 0 and seconds[-1] == 999
        assert set(np.diff(seconds)) <= {10, 11}  # evenly spread, not cut off

        # No max_points: the server's limit applies, above it the track is downsampled.
        whole = stub.GetFlightData(pb.FlightDataRequest(flight_id="win"))
        assert (whole.resolution, len(whole.flight_data)) == (pb.RESOLUTION_EVEN, 500)
        # A stream has no such limit: pages of the window, contiguous, in order.
        pages = list(
            stub.StreamFlightData(
                pb.StreamFlightDataRequest(
                    flight_id="win", start_time=ts(T0 + timedelta(seconds=50)), page_size=300
                )
            )
        )
        assert [len(p.flight_data) for p in pages] == [300, 300, 300, 50]
        assert [p.timestamp for page in pages for p in page.flight_data] == [
            iso(T0 + timedelta(seconds=s)) for s in range(50, 1000)
        ]

        # Retention drops raw points but keeps the per-minute aggregate: the track stays.
        refresh(apache_url, T0, T0 + timedelta(days=1))
        with connect(apache_url) as conn:
            conn.execute("DELETE FROM flight_data WHERE flight_id = 'win'")
        minutes = stub.GetFlightData(pb.FlightDataRequest(flight_id="win"))
        assert (minutes.resolution, minutes.stored_points) == (pb.RESOLUTION_MINUTE, 1000)
        assert [p.timestamp for p in minutes.flight_data] == [
            iso(T0 + timedelta(minutes=m)) for m in range(17)
        ]
        assert minutes.flight_data[1].altitude == round(
            np.mean([s for s in range(60, 120) if s % 7 != 6])
        )
        streamed = stub.StreamFlightData(pb.StreamFlightDataRequest(flight_id="win", page_size=10))
        assert [len(p.flight_data) for p in streamed] == [10, 7]

        empty = stub.GetFlightData(
            pb.FlightDataRequest(
                flight_id="win",
                start_time=ts(T0 - timedelta(days=2)),
                end_time=ts(T0 - timedelta(days=1)),
            )
        )
        assert (len(empty.flight_data), empty.resolution) == (0, pb.RESOLUTION_RAW)


def _request(**fields: object) -> pb.FlightDataRequest:
    return pb.FlightDataRequest(**fields)  # type: ignore[arg-type]


BAD_REQUESTS = [
    ("GetFlightData", _request(flight_id=""), "flight_id is required"),
    ("GetFlightData", _request(flight_id="x" * 13), "the limit is 12"),
    ("GetFlightData", _request(flight_id="a\x00b"), "control characters"),
    (
        "GetFlightData",
        _request(flight_id="win", start_time=ts(T0), end_time=ts(T0)),
        "must be before end_time",
    ),
    (
        "GetFlightData",
        _request(flight_id="win", start_time=ts(T0 + timedelta(1)), end_time=ts(T0)),
        "must be before end_time",
    ),
    ("GetFlightData", _request(flight_id="win", max_points=-5), "max_points must be"),
    ("GetFlightData", _request(flight_id="win", max_points=10**9), "StreamFlightData"),
    (
        "GetFlightData",
        _request(flight_id="win", start_time=Timestamp(seconds=1, nanos=-1)),
        "start_time is not a valid timestamp",
    ),
    (
        "StreamFlightData",
        pb.StreamFlightDataRequest(flight_id="win", page_size=10**8),
        "page_size must be",
    ),
    ("ListFlights", pb.ListFlightsRequest(), "start_time and end_time are both required"),
    (
        "ListFlights",
        pb.ListFlightsRequest(start_time=ts(T0), end_time=ts(T0 + timedelta(400))),
        "at most 31 days",
    ),
    (
        "ListFlights",
        pb.ListFlightsRequest(
            start_time=ts(T0),
            end_time=ts(T0 + timedelta(1)),
            bounding_box=pb.BoundingBox(min_latitude=-91, max_latitude=10),
        ),
        "bounding_box.min_latitude must be from -90 to 90",
    ),
    (
        "ListFlights",
        pb.ListFlightsRequest(
            start_time=ts(T0),
            end_time=ts(T0 + timedelta(1)),
            bounding_box=pb.BoundingBox(min_latitude=10, max_latitude=0),
        ),
        "min_latitude is above max_latitude",
    ),
    (
        "ListFlights",
        pb.ListFlightsRequest(start_time=ts(T0), end_time=ts(T0 + timedelta(1)), page_size=5000),
        "page_size must be from 1 to 1000",
    ),
    (
        "ListFlights",
        pb.ListFlightsRequest(
            start_time=ts(T0), end_time=ts(T0 + timedelta(1)), page_token="garbage!"
        ),
        "page_token is not one",
    ),
    (
        "ListFlights",
        pb.ListFlightsRequest(start_time=ts(T0), end_time=ts(T0 + timedelta(1)), airline="x" * 200),
        "airline is 200 characters",
    ),
    ("GetFlightSummary", pb.GetFlightSummaryRequest(), "flight_id is required"),
]


def _call(stub: flight_pb2_grpc.FlightDataServiceStub, method: str, request: object) -> object:
    result = getattr(stub, method)(request, timeout=10)
    return list(result) if method == "StreamFlightData" else result


@pytest.mark.apache
def test_bad_input_is_invalid_argument_with_a_clear_message(apache_url: str) -> None:
    with serving(apache_url) as server, stub_for(server.port) as stub:
        for method, request, message in BAD_REQUESTS:
            with pytest.raises(grpc.RpcError) as caught:
                _call(stub, method, request)
            assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT, (method, request)
            assert message in caught.value.details(), (method, caught.value.details())
        for method, request in (
            ("GetFlightData", pb.FlightDataRequest(flight_id="nope")),
            ("GetFlightSummary", pb.GetFlightSummaryRequest(flight_id="n")),
        ):
            with pytest.raises(grpc.RpcError) as caught:
                getattr(stub, method)(request, timeout=10)
            assert caught.value.code() == grpc.StatusCode.NOT_FOUND
        with pytest.raises(grpc.RpcError) as caught:
            list(stub.StreamFlightData(pb.StreamFlightDataRequest(flight_id="nope")))
        assert caught.value.code() == grpc.StatusCode.NOT_FOUND


@pytest.mark.apache
def test_internal_errors_name_a_log_reference_and_leak_nothing(
    apache_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    add_flight(apache_url, "broken", T0, 10)
    with connect(apache_url) as conn:
        conn.execute("DROP TABLE flight_days CASCADE")  # the summary's query now fails in SQL
    with (
        serving(apache_url) as server,
        stub_for(server.port) as stub,
        pytest.raises(grpc.RpcError) as caught,
        caplog.at_level(logging.ERROR, logger="pipelines.api.server"),
    ):
        stub.GetFlightSummary(pb.GetFlightSummaryRequest(flight_id="broken"))
    details = caught.value.details()
    assert caught.value.code() == grpc.StatusCode.INTERNAL
    assert details.startswith("internal error (reference ")
    for leak in ("flight_days", "SELECT", "Traceback", "psycopg", ".py"):
        assert leak not in details
    reference = details.removeprefix("internal error (reference ").rstrip(")")
    logged = [r for r in caplog.records if reference in r.getMessage()]
    assert logged and logged[0].exc_info is not None  # the operator gets the whole story


# -- StreamFlightData -----------------------------------------------------------------------


def _rss_kb(pid: int) -> int:
    status = Path(f"/proc/{pid}/status").read_text()
    return int(next(line.split()[1] for line in status.splitlines() if line.startswith("VmRSS:")))


@pytest.fixture
def served_process(apache_url: str) -> Iterator[tuple[subprocess.Popen[str], int]]:
    """`flights serve` in its own process, as production runs it."""
    env = {
        **os.environ,
        "FLIGHTS_DATABASE_URL": apache_url,
        "FLIGHTS_API_PORT": "0",
        "FLIGHTS_API_GRACE": "20",
        "FLIGHTS_API_DB_ROLE": "flights_reader",
    }
    proc = subprocess.Popen([FLIGHTS, "serve"], env=env, stderr=subprocess.PIPE, text=True)
    assert proc.stderr is not None
    line = proc.stderr.readline()
    assert "serving flight.FlightDataService on 127.0.0.1:" in line, line
    port = int(line.split("127.0.0.1:")[1].split()[0])
    yield proc, port
    if proc.poll() is None:
        proc.kill()
    proc.wait(timeout=30)


@pytest.mark.apache
def test_a_million_point_stream_arrives_whole_in_order_in_constant_memory(
    apache_url: str, served_process: tuple[subprocess.Popen[str], int]
) -> None:
    proc, port = served_process
    add_flight(apache_url, "long", T0, 1_000_000)
    rss: list[int] = []
    count, last = 0, ""
    with stub_for(port) as stub:
        pages = stub.StreamFlightData(
            pb.StreamFlightDataRequest(flight_id="long", page_size=20_000), timeout=120
        )
        for page in pages:
            stamps = [p.timestamp for p in page.flight_data]
            assert stamps == sorted(stamps) and stamps[0] > last
            count, last = count + len(stamps), stamps[-1]
            rss.append(_rss_kb(proc.pid))
    assert count == 1_000_000
    assert last == iso(T0 + timedelta(seconds=999_999))
    # 50 pages of 20,000 points (about 100 MB on the wire): the server holds about one page.
    growth_mb = (max(rss) - rss[2]) / 1024
    assert growth_mb < 40, f"server memory grew {growth_mb:.0f} MB during the stream"


@pytest.mark.apache
def test_sigterm_turns_health_not_serving_and_lets_calls_in_flight_finish(
    apache_url: str, served_process: tuple[subprocess.Popen[str], int]
) -> None:
    proc, port = served_process
    add_flight(apache_url, "slow", T0, 100)
    target = f"127.0.0.1:{port}"
    with grpc.insecure_channel(target) as channel, psycopg.connect(apache_url) as blocker:
        health = health_pb2_grpc.HealthStub(channel)
        watch = health.Watch(health_pb2.HealthCheckRequest(service="flight.FlightDataService"))
        assert next(watch).status == health_pb2.HealthCheckResponse.SERVING
        blocker.execute("LOCK TABLE flight_metadata IN ACCESS EXCLUSIVE MODE")
        stub = flight_pb2_grpc.FlightDataServiceStub(channel)
        in_flight = stub.GetFlightData.future(pb.FlightDataRequest(flight_id="slow"), timeout=60)
        _wait_for_api_query(apache_url, waiting=True)
        proc.send_signal(signal.SIGTERM)
        assert next(watch).status == health_pb2.HealthCheckResponse.NOT_SERVING
        watch.cancel()  # a watch never ends by itself: it would hold the stop for the grace
        time.sleep(0.5)
        blocker.rollback()  # the lock goes; the call in flight completes within the grace
        assert len(in_flight.result().flight_data) == 100
    assert proc.wait(timeout=30) == 0


# -- deadlines and cancellation -------------------------------------------------------------


def _api_queries(url: str) -> list[tuple[str, str | None]]:
    with psycopg.connect(url) as conn:
        return conn.execute(
            "SELECT state, wait_event_type FROM pg_stat_activity "
            "WHERE application_name = 'flights-api' AND datname = current_database() "
            "AND state = 'active'"
        ).fetchall()


def _wait_for_api_query(url: str, *, waiting: bool, within: float = 10) -> None:
    """Until an API query waits on a lock (waiting) or none is running any more."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        rows = _api_queries(url)
        if waiting == any(wait == "Lock" for _, wait in rows):
            return
        time.sleep(0.05)
    raise AssertionError(f"API queries: {_api_queries(url)}")


@pytest.mark.apache
def test_an_expired_deadline_or_a_cancelled_call_stops_its_query(apache_url: str) -> None:
    """A query blocked on a lock would wait forever; the call's end must end it."""
    add_flight(apache_url, "locked", T0, 100)
    with (
        serving(apache_url, query_timeout=600) as server,
        stub_for(server.port) as stub,
        psycopg.connect(apache_url) as blocker,
    ):
        blocker.execute("LOCK TABLE flight_metadata IN ACCESS EXCLUSIVE MODE")
        started = time.monotonic()
        with pytest.raises(grpc.RpcError) as caught:
            stub.GetFlightData(pb.FlightDataRequest(flight_id="locked"), timeout=0.5)
        assert caught.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
        _wait_for_api_query(apache_url, waiting=False, within=3)
        assert time.monotonic() - started < 3

        # No deadline at all: only the client's cancel can stop this one.
        call = stub.GetFlightData.future(pb.FlightDataRequest(flight_id="locked"))
        _wait_for_api_query(apache_url, waiting=True)
        call.cancel()
        _wait_for_api_query(apache_url, waiting=False, within=3)

        blocker.rollback()
        assert len(stub.GetFlightData(pb.FlightDataRequest(flight_id="locked")).flight_data) == 100


# -- ListFlights and GetFlightSummary -------------------------------------------------------


def _flights_fixture(url: str) -> None:
    add_flight(
        url,
        "af1",
        T0,
        120,
        latitude=48.0,
        longitude=2.0,
        airline="Air France",
        departure="CDG",
        arrival="NCE",
    )
    add_flight(
        url,
        "af2",
        T0 + timedelta(hours=2),
        120,
        latitude=43.0,
        longitude=7.0,
        airline="Air France",
        departure="NCE",
        arrival="CDG",
    )
    add_flight(
        url,
        "ba1",
        T0 + timedelta(minutes=30),
        120,
        latitude=51.0,
        longitude=0.0,
        airline="British Airways",
        departure="LHR",
        arrival="CDG",
    )
    add_flight(
        url,
        "nz1",
        T0 + timedelta(hours=1),
        120,
        latitude=-40.0,
        longitude=179.99,
        airline="Air New Zealand",
        departure="AKL",
        arrival="SCL",
    )
    # Two UTC days: 23:00 to 01:00.
    add_flight(
        url,
        "night",
        datetime(2024, 3, 1, 23, tzinfo=UTC),
        7200,
        step=timedelta(seconds=1),
        latitude=10.0,
        longitude=20.0,
        airline=None,
        flight_number=None,
        departure=None,
        arrival=None,
    )
    refresh(url, T0, T0 + timedelta(days=2))


def _list(stub: object, **fields: object) -> list[str]:
    request = pb.ListFlightsRequest(
        start_time=ts(T0), end_time=ts(T0 + timedelta(days=1)), **fields
    )  # type: ignore[arg-type]
    return [f.flight_id for f in stub.ListFlights(request).flights]  # type: ignore[attr-defined]


def test_list_flights_filters_and_pages_in_a_stable_order(db_url: str) -> None:
    _flights_fixture(db_url)
    with serving(db_url) as server, stub_for(server.port) as stub:
        assert _list(stub) == ["af1", "ba1", "nz1", "af2", "night"]
        assert _list(stub, airline="Air France") == ["af1", "af2"]
        assert _list(stub, departure_airport="NCE") == ["af2"]
        assert _list(stub, arrival_airport="CDG") == ["ba1", "af2"]
        box = pb.BoundingBox(min_latitude=42, max_latitude=49, min_longitude=1.5, max_longitude=7.5)
        assert _list(stub, bounding_box=box) == ["af1", "af2"]
        across = pb.BoundingBox(
            min_latitude=-41, max_latitude=-39, min_longitude=179.5, max_longitude=-179.5
        )
        assert _list(stub, bounding_box=across) == ["nz1"]
        narrow = stub.ListFlights(
            pb.ListFlightsRequest(
                start_time=ts(T0 + timedelta(minutes=31)), end_time=ts(T0 + timedelta(minutes=90))
            )
        )
        assert [f.flight_id for f in narrow.flights] == ["ba1", "nz1"]

        seen, token, pages = [], "", 0
        while True:
            page = stub.ListFlights(
                pb.ListFlightsRequest(
                    start_time=ts(T0),
                    end_time=ts(T0 + timedelta(days=1)),
                    page_size=2,
                    page_token=token,
                )
            )
            seen += [f.flight_id for f in page.flights]
            pages += 1
            token = page.next_page_token
            if not token:
                break
        assert (seen, pages) == (["af1", "ba1", "nz1", "af2", "night"], 3)
        first_page = stub.ListFlights(
            pb.ListFlightsRequest(
                start_time=ts(T0), end_time=ts(T0 + timedelta(days=1)), page_size=1
            )
        )
        first = first_page.flights[0]
        assert (first.airline, first.departure_airport, first.points) == ("Air France", "CDG", 120)
        assert first.first_seen.ToDatetime(tzinfo=UTC) == T0
        with pytest.raises(grpc.RpcError) as caught:
            stub.ListFlights(
                pb.ListFlightsRequest(
                    start_time=ts(T0),
                    end_time=ts(T0 + timedelta(days=1)),
                    page_size=1,
                    page_token=first_page.next_page_token,
                    airline="Air France",
                )
            )
        assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "different query" in caught.value.details()


def test_flight_summary_has_metadata_and_each_day(db_url: str) -> None:
    _flights_fixture(db_url)
    with serving(db_url) as server, stub_for(server.port) as stub:
        night = stub.GetFlightSummary(pb.GetFlightSummaryRequest(flight_id="night"))
        af1 = stub.GetFlightSummary(pb.GetFlightSummaryRequest(flight_id="af1"))
    assert [d.day for d in night.days] == ["2024-03-01", "2024-03-02"]
    assert [d.points for d in night.days] == [3600, 3600] and night.flight.points == 7200
    assert night.flight.airline == "" and night.flight.flight_id == "night"
    assert night.flight.first_seen.ToDatetime(tzinfo=UTC) == datetime(2024, 3, 1, 23, tzinfo=UTC)
    assert night.flight.last_seen.ToDatetime(tzinfo=UTC) == datetime(
        2024, 3, 2, 0, 59, 59, tzinfo=UTC
    )
    day = night.days[1]
    assert day.max_altitude == 7199 and day.max_airspeed == 449
    assert day.bounding_box.min_latitude == pytest.approx(10.036)
    assert day.bounding_box.max_longitude == pytest.approx(20.07199)
    assert (af1.flight.airline, af1.flight.flight_number, af1.flight.arrival_airport) == (
        "Air France",
        "TA1",
        "NCE",
    )
    assert len(af1.days) == 1 and af1.days[0].points == 120


# -- production concerns --------------------------------------------------------------------


@pytest.mark.apache
def test_bearer_tokens_tls_health_reflection_and_the_cli(apache_url: str, tmp_path: Path) -> None:
    add_flight(apache_url, "sec", T0, 30)
    cert, key = self_signed(tmp_path)
    trusted = grpc.ssl_channel_credentials(root_certificates=cert.read_bytes())
    with serving(
        apache_url, tokens=("old-token", "new-token"), tls_cert=cert, tls_key=key
    ) as server:
        with stub_for(server.port, credentials=trusted) as stub:
            request = pb.FlightDataRequest(flight_id="sec")
            for metadata in (
                (),
                (("authorization", "Bearer wrong"),),
                (("authorization", "Basic new-token"),),
            ):
                with pytest.raises(grpc.RpcError) as caught:
                    stub.GetFlightData(request, metadata=metadata)
                assert caught.value.code() == grpc.StatusCode.UNAUTHENTICATED
            with pytest.raises(grpc.RpcError) as caught:
                list(stub.StreamFlightData(pb.StreamFlightDataRequest(flight_id="sec")))
            assert caught.value.code() == grpc.StatusCode.UNAUTHENTICATED
            for token in ("old-token", "new-token"):
                good = stub.GetFlightData(request, metadata=(("authorization", f"Bearer {token}"),))
                assert len(good.flight_data) == 30

        target = f"127.0.0.1:{server.port}"
        with grpc.secure_channel(target, trusted) as channel:
            # Probes need no token; reflection, like the service, does.
            health = health_pb2_grpc.HealthStub(channel)
            for service in ("", "flight.FlightDataService"):
                status = health.Check(health_pb2.HealthCheckRequest(service=service)).status
                assert status == health_pb2.HealthCheckResponse.SERVING
            with pytest.raises(grpc.RpcError) as caught:
                ProtoReflectionDescriptorDatabase(channel).get_services()
            assert caught.value.code() == grpc.StatusCode.UNAUTHENTICATED
        authorised = grpc.composite_channel_credentials(
            trusted, grpc.access_token_call_credentials("new-token")
        )
        with grpc.secure_channel(target, authorised) as channel:
            services = ProtoReflectionDescriptorDatabase(channel).get_services()
            assert "flight.FlightDataService" in services
            assert "grpc.health.v1.Health" in services

        with grpc.insecure_channel(target) as channel, pytest.raises(grpc.RpcError) as caught:
            flight_pb2_grpc.FlightDataServiceStub(channel).GetFlightData(request, timeout=5)
        assert caught.value.code() == grpc.StatusCode.UNAVAILABLE

        env = {
            **os.environ,
            "FLIGHTS_API_TARGET": target,
            "FLIGHTS_API_TLS_CA": str(cert),
            "FLIGHTS_API_TOKEN": "new-token",
        }
        table = subprocess.run(
            [
                FLIGHTS,
                "get",
                "sec",
                "--from",
                "2024-03-01T10:00:10",
                "--to",
                "2024-03-01T10:00:13Z",
            ],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        as_json = subprocess.run(
            [FLIGHTS, "get", "sec", "--max-points", "3", "--json"],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        denied = subprocess.run(
            [FLIGHTS, "get", "sec"],
            env={**env, "FLIGHTS_API_TOKEN": "x"},
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert table.returncode == 0, table.stderr
    lines = table.stdout.splitlines()
    assert lines[0].startswith("sec  Test Air TA1  GVA -> LHR  3 points (raw, 3 stored)")
    assert [line.split()[0] for line in lines[2:]] == [
        "2024-03-01T10:00:10Z",
        "2024-03-01T10:00:11Z",
        "2024-03-01T10:00:12Z",
    ]
    assert lines[2].split()[1:] == ["45.00010", "7.00010", "10", "260", "10.0", "64", "no"]
    track = json.loads(as_json.stdout)
    assert (track["resolution"], track["stored_points"], len(track["points"])) == ("even", 30, 3)
    assert track["points"][-1]["timestamp"] == "2024-03-01T10:00:29Z"
    assert denied.returncode == 1 and "UNAUTHENTICATED" in denied.stderr


def test_the_api_reads_through_a_read_only_role_and_read_only_transactions(
    db_url: str,
) -> None:
    add_flight(db_url, "ro", T0, 5)
    store = FlightStore.open(db_url, min_size=1, max_size=1, role="flights_reader")
    try:
        with store.reading(timeout=5) as reads:
            assert reads.flight("ro").airline == "Test Air"
        with store.pool.connection() as conn, pytest.raises(psycopg.errors.ReadOnlySqlTransaction):
            conn.execute("DELETE FROM flight_data")
    finally:
        store.close()
    with connect(db_url) as conn:
        conn.execute("SET ROLE flights_reader")
        assert conn.execute("SELECT count(*) FROM flight_data").fetchone() == (5,)
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("DELETE FROM flight_metadata")


@pytest.mark.apache
def test_a_missing_role_or_port_in_use_fails_at_start_not_per_call(apache_url: str) -> None:
    env = {
        **os.environ,
        "FLIGHTS_DATABASE_URL": apache_url,
        "FLIGHTS_API_PORT": "0",
        "FLIGHTS_API_DB_ROLE": "no_such_role",
    }
    result = subprocess.run([FLIGHTS, "serve"], env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == ['error: role "no_such_role" does not exist']
    with serving(apache_url) as server:
        taken = subprocess.run(
            [FLIGHTS, "serve", "--port", str(server.port)],
            env={**env, "FLIGHTS_API_DB_ROLE": ""},
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert taken.returncode == 1
    assert taken.stderr.strip().splitlines() == [
        f"Error: cannot listen on 127.0.0.1:{server.port}: the port is taken (another "
        "`flights serve`?); stop that server or pass another --port (FLIGHTS_API_PORT)"
    ]


@pytest.mark.apache
@settings(
    max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    listening=st.sampled_from(["127.0.0.1", "0.0.0.0"]),
    serving_on=st.sampled_from(["127.0.0.1", "0.0.0.0", "localhost"]),
)
def test_a_port_another_socket_listens_on_is_refused_in_one_line(
    apache_url: str, listening: str, serving_on: str
) -> None:
    """Whichever of the host's addresses the other socket holds."""
    with socket.socket() as other:
        other.bind((listening, 0))
        other.listen()
        port = other.getsockname()[1]
        with pytest.raises(OSError, match=r"^cannot listen on .*: the port is taken "):
            start(config(apache_url, host=serving_on, port=port))


_LOCAL_HOSTS = ["127.0.0.1", "localhost", "0.0.0.0", "::1", "::", "[::1]", "[::]"]
_HOSTS = st.one_of(
    st.sampled_from(_LOCAL_HOSTS),
    st.from_regex(r"[a-z][a-z0-9-]{0,20}\.invalid", fullmatch=True),
    st.integers(1, 254).map(lambda n: f"192.0.2.{n}"),  # TEST-NET-1: never this machine's
    st.integers(256, 999).map(lambda n: f"{n}.0.0.1"),
)


@pytest.mark.apache
@settings(
    max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(host=_HOSTS)
def test_any_host_serves_or_is_refused_in_one_line(apache_url: str, host: str) -> None:
    """IPv6 addresses with or without brackets serve; a name that does not resolve or an
    address that is not this machine's is one line naming the setting, before gRPC logs."""
    if host not in _LOCAL_HOSTS:
        refused = (
            r"^cannot listen on \S+:0: (the host cannot be resolved \(.+\)|.+ for \S+); pass "
            r"--host or set FLIGHTS_API_HOST to an address of this machine$"
        )
        with pytest.raises(OSError, match=refused):
            start(config(apache_url, host=host, port=0))
        return
    running = start(config(apache_url, host=host, port=0))
    try:
        loopback = "[::1]" if ":" in host else "127.0.0.1"
        with grpc.insecure_channel(f"{loopback}:{running.port}") as channel:
            reply = health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(), timeout=10
            )
        assert reply.status == health_pb2.HealthCheckResponse.SERVING
    finally:
        running.stop(0)


@pytest.mark.apache
def test_a_port_whose_last_server_just_stopped_serves_again(apache_url: str) -> None:
    """The connections a stopped server closed linger in TIME_WAIT on its port; they do not
    make the port taken (here the server side closes first, as a stopping server does)."""
    with socket.socket() as old:
        old.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as gRPC's listeners do
        old.bind(("127.0.0.1", 0))
        old.listen()
        port = old.getsockname()[1]
        with socket.create_connection(("127.0.0.1", port)) as client:
            accepted, _ = old.accept()
            accepted.close()  # the active close: TIME_WAIT stays on 127.0.0.1:port
            client.recv(1)
    with serving(apache_url, port=port) as again:
        assert again.port == port


# -- the wire encoder -----------------------------------------------------------------------

_finite = st.floats(allow_nan=False, allow_infinity=False, width=64)
_point = st.tuples(
    st.integers(-62_135_596_800_000_000, 253_402_300_799_999_999),  # years 1 to 9999, in us
    _finite,
    _finite,
    st.one_of(st.none(), st.integers(-(2**31), 2**31 - 1)),
    st.one_of(st.none(), st.integers(-(2**31), 2**31 - 1)),
    st.one_of(st.none(), st.floats(-360, 360, width=32)),
    st.one_of(st.none(), st.integers(-(2**31), 2**31 - 1)),
    st.one_of(st.none(), st.booleans()),
)


@settings(max_examples=200, deadline=None)
@given(
    points=st.lists(_point, max_size=40, unique_by=lambda p: p[0]),
    airline=st.one_of(st.none(), st.text(max_size=200)),
)
def test_encoded_tracks_parse_as_the_messages_protobuf_would_build(
    points: list[tuple], airline: str | None
) -> None:
    points.sort()
    meta = FlightMeta("f1", airline, "N1", None, "XYZ")

    def column(i: int) -> np.ndarray:
        return np.array([np.nan if p[i] is None else float(p[i]) for p in points], dtype=np.float64)

    track = Track(np.array([p[0] for p in points], dtype=np.int64), *map(column, range(1, 8)))
    encoded = encode_track(track, meta, resolution=pb.RESOLUTION_EVEN, stored_points=7)
    epoch = datetime(1970, 1, 1, tzinfo=UTC)
    expected = pb.FlightDataResponse(resolution=pb.RESOLUTION_EVEN, stored_points=7)
    for us, lat, lon, alt, speed, track_deg, rate, ground in points:
        when = epoch + timedelta(microseconds=us)
        expected.flight_data.add(
            flight_id="f1",
            latitude=lat,
            longitude=lon,
            altitude=alt or 0,
            airspeed=speed or 0,
            timestamp=when.replace(tzinfo=None).isoformat() + "Z",
            airline=airline or "",
            flight_number="N1",
            arrival_airport="XYZ",
            track=track_deg,
            vertical_rate=rate,
            on_ground=ground,
        )
    assert pb.FlightDataResponse.FromString(encoded.data) == expected


@given(
    st.lists(
        st.integers(-(2**31), 2**31 - 1) | st.integers(-(1 << 15) - 2, (1 << 17) + 1),
        max_size=50,
    )
)
def test_varints_looked_up_are_the_varints_computed(values: list[int]) -> None:
    """The encoder looks varints up in a table when every value is in it (the edges of the
    table included), and computes them otherwise: both give the same bytes."""
    array = np.array(values, dtype=np.int64)
    (looked, lengths), (computed, computed_lengths) = varints(array), computed_varints(array)
    assert np.array_equal(lengths, computed_lengths) and np.array_equal(looked, computed)


@given(st.datetimes(timezones=st.none() | st.timezones()))
def test_timestamps_are_the_ones_protobuf_makes(value: datetime) -> None:
    """The API's conversion of a datetime (aware or naive, any year) to a Timestamp."""
    expected = Timestamp()
    expected.FromDatetime(value)
    assert ts(value) == expected
