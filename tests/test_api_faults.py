"""The API under hostile clients and a vanishing database: clients that never read their
streams hold no worker for long and starve nobody; with the database down calls fail at once
with UNAVAILABLE, and the server serves again by itself once the database is back."""

from __future__ import annotations

import time
from collections import Counter
from datetime import UTC, datetime

import grpc
import pytest

from pipelines.proto import flight_pb2 as pb
from pipelines.proto import flight_pb2_grpc
from tests.api import add_flight, serving, stub_for
from tests.test_drills import restart_db, scratch_env  # noqa: F401 - fixtures
from tests.test_foundation import flights

T0 = datetime(2024, 3, 1, 10, 0, tzinfo=UTC)
STALLED = 8


def _wait_for(condition: object, what: str, within: float = 60) -> None:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if condition():  # type: ignore[operator]
            return
        time.sleep(0.05)
    pytest.fail(f"never saw {what}")


def _code(call: grpc.Call) -> grpc.StatusCode:
    try:
        for _ in call:  # type: ignore[attr-defined]
            pass
    except grpc.RpcError as exc:
        return exc.code()
    return grpc.StatusCode.OK


@pytest.mark.apache
def test_clients_that_never_read_their_streams_starve_no_one(apache_url: str) -> None:
    add_flight(apache_url, "long", T0, 400_000)
    add_flight(apache_url, "short", T0, 50)
    with serving(apache_url, workers=4, stream_send_timeout=2.0) as running:
        gate = running.servicer.streams
        channels = [grpc.insecure_channel(f"127.0.0.1:{running.port}") for _ in range(STALLED)]
        try:
            stalled = [
                flight_pb2_grpc.FlightDataServiceStub(channel).StreamFlightData(
                    pb.StreamFlightDataRequest(flight_id="long", page_size=20_000), timeout=120
                )
                for channel in channels
            ]
            _wait_for(lambda: gate.open_streams == 2, "the stalled streams admitted")
            with stub_for(running.port) as stub:
                for _ in range(20):  # every worker but the streams' stays free
                    reply = stub.GetFlightData(pb.FlightDataRequest(flight_id="short"), timeout=5)
                    assert len(reply.flight_data) == 50
            # Their clients took nothing: each admitted stream is cancelled by its send timeout.
            _wait_for(lambda: gate.open_streams == 0, "the stalled streams cancelled")
            codes = Counter(_code(call) for call in stalled)
        finally:
            for channel in channels:
                channel.close()
        # Two per client address (all of these share 127.0.0.1); the others were refused.
        assert codes == {
            grpc.StatusCode.CANCELLED: 2,
            grpc.StatusCode.RESOURCE_EXHAUSTED: STALLED - 2,
        }
        with stub_for(running.port) as stub:  # a client that reads gets the whole track
            pages = stub.StreamFlightData(
                pb.StreamFlightDataRequest(flight_id="long", page_size=20_000), timeout=120
            )
            assert sum(len(page.flight_data) for page in pages) == 400_000


@pytest.mark.apache
def test_with_the_database_down_calls_fail_fast_and_recover_by_themselves(
    scratch_env: dict[str, str],  # noqa: F811 - the fixture imported above
    restart_db: str,  # noqa: F811
) -> None:
    add_flight(restart_db, "short", T0, 50)
    request = pb.FlightDataRequest(flight_id="short")
    with serving(restart_db) as running, stub_for(running.port) as stub:
        assert len(stub.GetFlightData(request, timeout=10).flight_data) == 50
        assert flights("db", "down", env=scratch_env).returncode == 0
        for _ in range(5):
            began = time.monotonic()
            with pytest.raises(grpc.RpcError) as failed:
                stub.GetFlightData(request, timeout=20)
            assert failed.value.code() == grpc.StatusCode.UNAVAILABLE
            assert time.monotonic() - began < 3, "a call waited instead of failing fast"
        assert flights("db", "up", env=scratch_env).returncode == 0

        seen: set[grpc.StatusCode] = set()

        def served() -> bool:
            try:
                stub.GetFlightData(request, timeout=10)
            except grpc.RpcError as exc:
                seen.add(exc.code())
                return False
            return True

        _wait_for(served, "the server serving again")
        assert seen <= {grpc.StatusCode.UNAVAILABLE}, seen
        for _ in range(5):
            assert len(stub.GetFlightData(request, timeout=10).flight_data) == 50
