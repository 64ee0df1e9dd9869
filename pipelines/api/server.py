"""The gRPC server: `flight.FlightDataService` over the flight store.

Around the service: a bounded worker pool and a bounded connection pool, read-only queries
whose statement timeout follows the caller's deadline (and that are cancelled when the caller
goes away), the standard health service and reflection, optional TLS and bearer tokens, and a
graceful stop: health turns NOT_SERVING, new calls are refused, calls in flight get a grace
period. Failures the caller can act on get their own status; anything else is INTERNAL with a
reference to the server's log, never SQL or a traceback.
"""

from __future__ import annotations

import errno
import functools
import inspect
import logging
import signal
import socket
import ssl
import threading
import uuid
from collections.abc import Callable, Iterator
from concurrent import futures
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any, TypeVar

import grpc
import psycopg
from google.protobuf import message_factory
from google.protobuf.message import DecodeError
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection
from psycopg_pool import PoolTimeout

from pipelines.api import validation
from pipelines.api.auth import BearerTokenInterceptor
from pipelines.api.config import ApiConfig
from pipelines.api.guards import Refused, StoreAvailability, StreamGate
from pipelines.api.validation import BadRequest, TrackQuery, to_timestamp
from pipelines.api.wire import Encoded, encode_track, serialize_response
from pipelines.flights.records import METADATA_COLUMNS
from pipelines.proto import flight_pb2, flight_pb2_grpc
from pipelines.warehouse.flight_reads import (
    Cancellation,
    FlightListing,
    FlightMeta,
    FlightReads,
    FlightStore,
    ReadCancelled,
    Source,
    Track,
)

log = logging.getLogger(__name__)

SERVICE = flight_pb2.DESCRIPTOR.services_by_name["FlightDataService"]
_MAX_REQUEST_BYTES = 1024 * 1024


class Failure(Exception):
    """An expected failure with the status the caller gets."""

    def __init__(self, code: grpc.StatusCode, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def _abort(context: grpc.ServicerContext, exc: Exception, method: str) -> None:
    """Ends the call with the status for `exc` (context.abort raises)."""
    if isinstance(exc, Failure | Refused):
        code, message = exc.code, exc.message
    elif isinstance(exc, BadRequest):
        code, message = grpc.StatusCode.INVALID_ARGUMENT, str(exc)
    elif isinstance(exc, ReadCancelled):
        code, message = grpc.StatusCode.CANCELLED, "the call was cancelled"
    elif isinstance(exc, psycopg.errors.QueryCanceled):
        code = grpc.StatusCode.DEADLINE_EXCEEDED
        message = "the query outlasted the call's deadline or the server's query timeout"
    elif isinstance(exc, PoolTimeout):
        code, message = grpc.StatusCode.UNAVAILABLE, "the server is busy; retry later"
    elif isinstance(exc, psycopg.OperationalError):
        log.warning("%s: flight store unavailable: %s", method, exc)
        code, message = grpc.StatusCode.UNAVAILABLE, "the flight store is unavailable; retry later"
    else:
        reference = uuid.uuid4().hex[:12]
        log.error("%s failed (reference %s)", method, reference, exc_info=exc)
        code, message = grpc.StatusCode.INTERNAL, f"internal error (reference {reference})"
    context.abort(code, message)


@dataclass(frozen=True)
class Unparseable:
    """What a request's bytes decode to when they are not its message (truncated, invalid
    UTF-8 in a string, a wrong wire type): the RPC answers INVALID_ARGUMENT saying so, where
    gRPC's own deserializer would fail the call as INTERNAL, as if the server were at fault."""

    message_type: str


def lenient_parser(request_class: Any) -> Callable[[bytes], Any]:
    """`request_class.FromString`, returning `Unparseable` instead of raising."""

    def parse(data: bytes) -> Any:
        try:
            return request_class.FromString(data)
        except DecodeError:
            return Unparseable(request_class.DESCRIPTOR.full_name)

    return parse


def _parsed(request: Any) -> None:
    if isinstance(request, Unparseable):
        raise BadRequest(
            f"the request is not a valid {request.message_type} message (protobuf wire "
            "format, strings in UTF-8)"
        )


F = TypeVar("F", bound=Callable[..., Any])


def _rpc(method: F) -> F:
    """Maps what an RPC raises to a status; streams are generators and are wrapped as such,
    admitted by the stream gate, each message watched until the client takes it."""
    if inspect.isgeneratorfunction(method):

        @functools.wraps(method)
        def stream(
            self: FlightDataServicer, request: Any, context: grpc.ServicerContext
        ) -> Iterator[Any]:
            try:
                _parsed(request)
                with self.streams.admit(context):
                    for message in method(self, request, context):
                        self.streams.sending(context)
                        yield message
                        self.streams.sent(context)
            except Exception as exc:
                self.availability.noticed(exc)
                _abort(context, exc, method.__name__)

        return stream  # type: ignore[return-value]

    @functools.wraps(method)
    def unary(self: FlightDataServicer, request: Any, context: grpc.ServicerContext) -> Any:
        try:
            _parsed(request)
            return method(self, request, context)
        except Exception as exc:
            self.availability.noticed(exc)
            _abort(context, exc, method.__name__)

    return unary  # type: ignore[return-value]


def _summary(meta: FlightMeta | FlightListing, **totals: Any) -> flight_pb2.FlightSummary:
    fields: dict[str, Any] = {
        name: getattr(meta, name) or "" for name in ("flight_id", *METADATA_COLUMNS)
    }
    return flight_pb2.FlightSummary(**fields, **totals)


class FlightDataServicer(flight_pb2_grpc.FlightDataServiceServicer):
    def __init__(self, store: FlightStore, config: ApiConfig) -> None:
        self._store = store
        self._config = config
        self.availability = StoreAvailability(config.database_url, store.pool)
        self.streams = StreamGate(
            # With more than one worker, one at least always stays for the other calls.
            total=max(1, min(config.max_streams, config.workers - 1)),
            per_client=config.streams_per_client,
            send_timeout=config.stream_send_timeout,
        )

    # -- per-call plumbing -----------------------------------------------------------------
    def _cancellation(self, context: grpc.ServicerContext) -> Cancellation:
        """Cancels the call's running query when the call ends early (deadline, client gone)."""
        cancellation = Cancellation()
        if not context.add_callback(cancellation.cancel):
            cancellation.cancel()
        return cancellation

    def _reading(
        self, context: grpc.ServicerContext, cancellation: Cancellation
    ) -> AbstractContextManager[FlightReads]:
        remaining = context.time_remaining()
        timeout = (
            self._config.query_timeout
            if remaining is None
            else min(remaining, self._config.query_timeout)
        )
        if timeout <= 0:
            raise Failure(grpc.StatusCode.DEADLINE_EXCEEDED, "the deadline has passed")
        self.availability.check()
        return self._store.reading(timeout=timeout, cancellation=cancellation)

    # -- RPCs ------------------------------------------------------------------------------
    @_rpc
    def GetFlightData(
        self, request: flight_pb2.FlightDataRequest, context: grpc.ServicerContext
    ) -> Encoded:
        query = validation.track(request, self._config)
        with self._reading(context, self._cancellation(context)) as reads:
            meta = reads.flight(query.flight_id)
            return self._track(reads, query, meta)

    def _track(self, reads: FlightReads, q: TrackQuery, meta: FlightMeta) -> Encoded:
        """Raw points, all or evenly spaced, in one statement; the per-minute aggregate when
        the window's raw points are gone (retention)."""
        raw = reads.track_even(Source.RAW, q.flight_id, q.window, points=q.limit)
        if raw.available:
            resolution = (
                flight_pb2.RESOLUTION_RAW
                if raw.available <= q.limit
                else flight_pb2.RESOLUTION_EVEN
            )
            return encode_track(raw.track, meta, resolution=resolution, stored_points=raw.reports)
        minutes = reads.track_even(Source.MINUTES, q.flight_id, q.window, points=q.limit)
        if not minutes.available:
            if not reads.known(q.flight_id):
                raise Failure(grpc.StatusCode.NOT_FOUND, f"flight {q.flight_id!r} not found")
            return encode_track(Track.empty(), meta, resolution=flight_pb2.RESOLUTION_RAW)
        return encode_track(
            minutes.track,
            meta,
            resolution=flight_pb2.RESOLUTION_MINUTE,
            stored_points=minutes.reports,
        )

    @_rpc
    def StreamFlightData(
        self, request: flight_pb2.StreamFlightDataRequest, context: grpc.ServicerContext
    ) -> Iterator[Encoded]:
        """Pages by keyset (each page starts after the last one's final point), each on a
        connection taken from the pool and given back before the page is sent, so a slow
        reader holds no connection and memory stays at one page."""
        q = validation.stream(request, self._config)
        cancellation = self._cancellation(context)
        with self._reading(context, cancellation) as reads:
            meta = reads.flight(q.flight_id)
            source = Source.RAW
            page = reads.track(source, q.flight_id, q.window, limit=q.limit)
            if not len(page):
                source = Source.MINUTES
                page = reads.track(source, q.flight_id, q.window, limit=q.limit)
            if not len(page) and not reads.known(q.flight_id):
                raise Failure(grpc.StatusCode.NOT_FOUND, f"flight {q.flight_id!r} not found")
        window = q.window
        while len(page):
            yield encode_track(page, meta)
            if len(page) < q.limit:
                return
            window = validation.after_last(window, page.last_time)
            with self._reading(context, cancellation) as reads:
                page = reads.track(source, q.flight_id, window, limit=q.limit)

    @_rpc
    def ListFlights(
        self, request: flight_pb2.ListFlightsRequest, context: grpc.ServicerContext
    ) -> flight_pb2.ListFlightsResponse:
        q = validation.flights(request, self._config)
        with self._reading(context, self._cancellation(context)) as reads:
            rows = reads.flights(q.query, after=q.after, limit=q.page_size + 1)
        page = rows[: q.page_size]
        token = validation.page_token(q.query, page[-1]) if len(rows) > q.page_size else ""
        return flight_pb2.ListFlightsResponse(
            flights=[
                _summary(
                    r,
                    first_seen=to_timestamp(r.first_seen),
                    last_seen=to_timestamp(r.last_seen),
                    points=r.points,
                )
                for r in page
            ],
            next_page_token=token,
        )

    @_rpc
    def GetFlightSummary(
        self, request: flight_pb2.GetFlightSummaryRequest, context: grpc.ServicerContext
    ) -> flight_pb2.GetFlightSummaryResponse:
        flight_id = validation.flight_id(request.flight_id)
        with self._reading(context, self._cancellation(context)) as reads:
            meta = reads.flight(flight_id)
            days = reads.days(flight_id)
            if not days and not reads.known(flight_id):
                raise Failure(grpc.StatusCode.NOT_FOUND, f"flight {flight_id!r} not found")
        totals: dict[str, Any] = {"points": sum(d.points for d in days)}
        if days:
            totals |= {
                "first_seen": to_timestamp(days[0].first_seen),
                "last_seen": to_timestamp(days[-1].last_seen),
            }
        return flight_pb2.GetFlightSummaryResponse(
            flight=_summary(meta, **totals),
            days=[
                flight_pb2.FlightDay(
                    day=d.day.isoformat(),
                    first_seen=to_timestamp(d.first_seen),
                    last_seen=to_timestamp(d.last_seen),
                    points=d.points,
                    max_altitude=d.max_altitude,
                    max_airspeed=d.max_airspeed,
                    bounding_box=flight_pb2.BoundingBox(
                        min_latitude=d.min_latitude,
                        min_longitude=d.min_longitude,
                        max_latitude=d.max_latitude,
                        max_longitude=d.max_longitude,
                    ),
                )
                for d in days
            ],
        )


def service_handler(servicer: FlightDataServicer) -> grpc.GenericRpcHandler:
    """The service's handlers, built from its descriptor like the generated code's, except
    that FlightDataResponse accepts bytes already encoded (see wire.py) and a request that
    does not parse reaches its RPC as `Unparseable`."""
    handlers = {}
    for method in SERVICE.methods:
        request_class = message_factory.GetMessageClass(method.input_type)
        if method.output_type is flight_pb2.FlightDataResponse.DESCRIPTOR:
            serializer: Callable[[Any], bytes] = serialize_response
        else:
            serializer = message_factory.GetMessageClass(method.output_type).SerializeToString
        kind = (
            grpc.unary_stream_rpc_method_handler
            if method.server_streaming
            else grpc.unary_unary_rpc_method_handler
        )
        handlers[method.name] = kind(
            getattr(servicer, method.name),
            request_deserializer=lenient_parser(request_class),
            response_serializer=serializer,
        )
    return grpc.method_handlers_generic_handler(SERVICE.full_name, handlers)


@dataclass
class RunningServer:
    server: grpc.Server
    port: int
    health: health.HealthServicer
    store: FlightStore
    servicer: FlightDataServicer

    def stop(self, grace: float | None) -> None:
        """NOT_SERVING first (balancers drain), then refuse new calls and let those in flight
        finish for `grace` seconds; then close the pool."""
        self.health.enter_graceful_shutdown()
        self.server.stop(grace).wait()
        self.servicer.streams.close()
        self.store.close()


def _unusable_tls(config: ApiConfig, reason: str) -> OSError:
    return OSError(
        f"FLIGHTS_API_TLS_CERT ({config.tls_cert}) and FLIGHTS_API_TLS_KEY "
        f"({config.tls_key}) are not a PEM certificate and its unencrypted private key: {reason}"
    )


def _credentials(config: ApiConfig) -> grpc.ServerCredentials | None:
    """The server's TLS credentials, checked first: gRPC reports a certificate or key it
    cannot use only as a failure to bind the port."""
    if config.tls_cert is None or config.tls_key is None:
        return None
    try:
        ssl.create_default_context(ssl.Purpose.CLIENT_AUTH).load_cert_chain(
            config.tls_cert,
            config.tls_key,
            password=lambda: b"",  # never prompt
        )
    except OSError as exc:  # ssl.SSLError too
        raise _unusable_tls(config, str(exc.strerror or exc)) from None
    return grpc.ssl_server_credentials(
        [(config.tls_key.read_bytes(), config.tls_cert.read_bytes())]
    )


_SET_HOST = "pass --host or set FLIGHTS_API_HOST to an address of this machine"


def listen_address(host: str, port: int) -> str:
    """`host:port` as gRPC reads it: an IPv6 address in brackets (`[::1]:50051`)."""
    return f"[{host}]:{port}" if ":" in host and not host.startswith("[") else f"{host}:{port}"


def _bind_problem(host: str, port: int) -> str | None:
    """Why the server could not listen on the port at the host's addresses, probed as gRPC
    binds (SO_REUSEADDR: a port whose last server's connections linger in TIME_WAIT is
    free); None when it can. gRPC would fail too, after logging its own lines."""
    try:
        addresses = socket.getaddrinfo(
            host.strip("[]"), port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )
    except socket.gaierror as exc:
        return f"the host cannot be resolved ({exc.strerror}); {_SET_HOST}"
    for family, kind, proto, _, where in addresses:
        with socket.socket(family, kind, proto) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                probe.bind(where)
            except OSError as exc:
                if exc.errno == errno.EADDRINUSE:
                    return (
                        "the port is taken (another `flights serve`?); stop that server or "
                        "pass another --port (FLIGHTS_API_PORT)"
                    )
                return f"{exc.strerror} for {where[0]}; {_SET_HOST}"
    return None


def start(config: ApiConfig) -> RunningServer:
    """Opens the pool, checks the store can be read, binds, starts; raises when it cannot."""
    store = FlightStore.open(
        config.database_url,
        min_size=min(2, config.pool_size),
        max_size=config.pool_size,
        role=config.db_role,
        prepare=config.prepare,
        wait_timeout=10,
    )
    try:
        with store.reading(timeout=10) as reads:
            reads.check()
        credentials = _credentials(config)
        server = grpc.server(
            futures.ThreadPoolExecutor(
                max_workers=config.workers, thread_name_prefix="flights-api"
            ),
            interceptors=[BearerTokenInterceptor(config.tokens)] if config.tokens else None,
            options=[
                ("grpc.max_send_message_length", config.max_message_bytes),
                ("grpc.max_receive_message_length", _MAX_REQUEST_BYTES),
                ("grpc.so_reuseport", 0),  # a taken port is an error, not a shared one
            ],
            maximum_concurrent_rpcs=config.max_concurrent_rpcs,
        )
        servicer = FlightDataServicer(store, config)
        server.add_generic_rpc_handlers((service_handler(servicer),))
        health_servicer = health.HealthServicer(
            experimental_non_blocking=True,
            experimental_thread_pool=futures.ThreadPoolExecutor(max_workers=1),
        )
        health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
        reflection.enable_server_reflection(
            (SERVICE.full_name, health.SERVICE_NAME, reflection.SERVICE_NAME), server
        )
        address = listen_address(config.host, config.port)
        problem = _bind_problem(config.host, config.port)
        if problem:
            raise OSError(f"cannot listen on {address}: {problem}")
        try:
            port = (
                server.add_secure_port(address, credentials)
                if credentials
                else server.add_insecure_port(address)
            )
        except RuntimeError as exc:
            if credentials:
                # The address was free to bind (probed above): gRPC refused the TLS files
                # that Python's ssl accepted, and says so only as a failure to bind.
                raise _unusable_tls(config, "gRPC's TLS cannot use them") from None
            raise OSError(f"cannot listen on {address}: {exc}") from None
        server.start()
    except BaseException:
        store.close()
        raise
    for name in ("", SERVICE.full_name):
        health_servicer.set(name, health_pb2.HealthCheckResponse.SERVING)
    return RunningServer(server, port, health_servicer, store, servicer)


def serve(config: ApiConfig, on_ready: Callable[[RunningServer], None] | None = None) -> None:
    """Runs until SIGTERM or SIGINT, then stops gracefully."""
    stopping = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stopping.set())
    running = start(config)
    if on_ready:
        on_ready(running)
    stopping.wait()
    log.info("stopping: draining calls for up to %.0f s", config.grace)
    running.stop(config.grace)
    log.info("stopped")
