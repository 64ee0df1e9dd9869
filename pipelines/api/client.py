"""A small client of the API: channel set-up (TLS, token) and a track fetch."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import grpc

from pipelines.api.validation import to_timestamp
from pipelines.proto import flight_pb2, flight_pb2_grpc

# Responses can be as large as the server's FLIGHTS_API_MAX_MESSAGE_BYTES default.
MAX_RESPONSE_BYTES = 16 * 1024 * 1024


@dataclass(frozen=True)
class Connection:
    """Where the API is and how to reach it."""

    target: str
    token: str | None = None
    tls: bool = False
    tls_ca: Path | None = None  # trust this certificate or CA (implies TLS)

    def channel(self) -> grpc.Channel:
        options = [("grpc.max_receive_message_length", MAX_RESPONSE_BYTES)]
        if self.tls or self.tls_ca:
            roots = self.tls_ca.read_bytes() if self.tls_ca else None
            credentials = grpc.ssl_channel_credentials(root_certificates=roots)
            return grpc.secure_channel(self.target, credentials, options=options)
        return grpc.insecure_channel(self.target, options=options)

    @property
    def metadata(self) -> tuple[tuple[str, str], ...]:
        return (("authorization", f"Bearer {self.token}"),) if self.token else ()


def get_track(
    connection: Connection,
    flight_id: str,
    *,
    start: datetime | None = None,
    end: datetime | None = None,
    max_points: int = 0,
    timeout: float = 60.0,
) -> flight_pb2.FlightDataResponse:
    request = flight_pb2.FlightDataRequest(flight_id=flight_id, max_points=max_points)
    if start is not None:
        request.start_time.CopyFrom(to_timestamp(start))
    if end is not None:
        request.end_time.CopyFrom(to_timestamp(end))
    with connection.channel() as channel:
        stub = flight_pb2_grpc.FlightDataServiceStub(channel)
        response: flight_pb2.FlightDataResponse = stub.GetFlightData(
            request, timeout=timeout, metadata=connection.metadata
        )
        return response
