"""`flights serve` and `flights get`."""

from __future__ import annotations

import json
import logging
import math
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click
import grpc

from pipelines import settings
from pipelines.api import config as api_config
from pipelines.api import server
from pipelines.api.client import Connection, get_track
from pipelines.proto import flight_pb2


class _Time(click.ParamType):  # type: ignore[type-arg]  # generic only in stubs
    """ISO 8601; a time without a zone is UTC."""

    name = "time"

    def convert(
        self, value: Any, param: click.Parameter | None, ctx: click.Context | None
    ) -> datetime:
        if isinstance(value, datetime):
            return value
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            self.fail(f"{value!r} is not an ISO 8601 time (e.g. 2024-01-02T07:30:00Z)", param, ctx)
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


@click.command("serve")
@click.option("--host", help="Interface to listen on [FLIGHTS_API_HOST, 127.0.0.1].")
@click.option("--port", type=click.IntRange(0, 65535), help="[FLIGHTS_API_PORT, 50051].")
def serve(host: str | None, port: int | None) -> None:
    """Serve flight history over gRPC until SIGTERM (graceful) or Ctrl-C.

    Configured by FLIGHTS_API_* environment variables (docs/api.md): workers, pool size,
    limits, TLS certificate and key, bearer tokens, read-only database role.
    """
    config = api_config.ApiConfig.from_settings()
    config = replace(config, host=host or config.host, port=config.port if port is None else port)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )

    def ready(running: server.RunningServer) -> None:
        scheme = "TLS" if config.tls_cert else "plaintext"
        auth = "bearer token" if config.tokens else "no authentication"
        click.echo(
            f"serving flight.FlightDataService on "
            f"{server.listen_address(config.host, running.port)} "
            f"({scheme}, {auth}); store {settings.redact(config.database_url)}",
            err=True,
        )

    try:
        server.serve(config, on_ready=ready)
    except OSError as exc:
        raise click.ClickException(str(exc)) from None


def _value(message: flight_pb2.FlightData, name: str) -> Any:
    return getattr(message, name) if message.HasField(name) else None


def _point(p: flight_pb2.FlightData) -> dict[str, Any]:
    return {
        "timestamp": p.timestamp,
        "latitude": p.latitude,
        "longitude": p.longitude,
        "altitude": p.altitude,
        "airspeed": p.airspeed,
        "track": None if not p.HasField("track") else round(p.track, 1),
        "vertical_rate": _value(p, "vertical_rate"),
        "on_ground": _value(p, "on_ground"),
    }


def _finite(value: float) -> float:
    if not math.isfinite(value):
        raise click.BadParameter(f"{value} is not a number of seconds")
    return value


def _blank(value: Any, fmt: str = "") -> str:
    return "-" if value is None else format(value, fmt)


def _target(value: str) -> str:
    """A blank target is no address: gRPC would fail with UNKNOWN after a blank line."""
    if not value.strip():
        raise click.BadParameter("is blank; pass host:port, e.g. 127.0.0.1:50051")
    return value.strip()


@click.command("get")
@click.argument("flight_id")
@click.option("--from", "start", type=_Time(), help="Window start (ISO 8601, UTC if no zone).")
@click.option("--to", "end", type=_Time(), help="Window end, exclusive.")
@click.option(
    "--max-points",
    type=click.IntRange(0, 2**31 - 1),  # the request's int32
    default=0,
    help="Downsample above this many points (0: the server's limit).",
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@click.option(
    "--target",
    default=api_config.api_target,
    callback=lambda _ctx, _param, value: _target(value),
    help="host:port [FLIGHTS_API_TARGET, 127.0.0.1:FLIGHTS_API_PORT].",
)
@click.option(
    "--tls-ca",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=api_config.tls_ca,
    help="Trust this certificate [FLIGHTS_API_TLS_CA].",
)
@click.option("--tls", is_flag=True, help="Use TLS with the system's trusted roots.")
@click.option(
    "--timeout",
    # Finite (NaN passes a range check) and at most a day: past some 30 years gRPC's deadline
    # overflows and the call fails at once as DEADLINE_EXCEEDED, which would mislead.
    type=click.FloatRange(0, 86_400, min_open=True),
    callback=lambda _ctx, _param, value: _finite(value),
    default=60.0,
    show_default=True,
    help="Seconds.",
)
def get(
    flight_id: str,
    start: datetime | None,
    end: datetime | None,
    max_points: int,
    as_json: bool,
    target: str,
    tls_ca: Path | None,
    tls: bool,
    timeout: float,
) -> None:
    """Print a flight's track from the API as a table or JSON.

    The bearer token, if the server wants one, comes from FLIGHTS_API_TOKEN.
    """
    tokens = api_config.api_tokens()
    connection = Connection(target, token=tokens[0] if tokens else None, tls=tls, tls_ca=tls_ca)
    try:
        response = get_track(
            connection, flight_id, start=start, end=end, max_points=max_points, timeout=timeout
        )
    except grpc.RpcError as exc:
        if exc.code() == grpc.StatusCode.UNAVAILABLE:
            raise click.ClickException(
                f"no API server answers at {target}; start one with `flights serve` "
                "(or pass --target host:port)"
            ) from None
        raise click.ClickException(f"{exc.code().name}: {exc.details()}") from None
    resolution = flight_pb2.Resolution.Name(response.resolution).removeprefix("RESOLUTION_")
    first = (
        response.flight_data[0]
        if response.flight_data
        else flight_pb2.FlightData(flight_id=flight_id)
    )
    if as_json:
        click.echo(
            json.dumps(
                {
                    "flight_id": flight_id,
                    "airline": first.airline,
                    "flight_number": first.flight_number,
                    "departure_airport": first.departure_airport,
                    "arrival_airport": first.arrival_airport,
                    "resolution": resolution.lower(),
                    "stored_points": response.stored_points,
                    "points": [_point(p) for p in response.flight_data],
                },
                indent=1,
            )
        )
        return
    route = f"{first.departure_airport or '?'} -> {first.arrival_airport or '?'}"
    click.echo(
        f"{flight_id}  {first.airline} {first.flight_number}  {route}  "
        f"{len(response.flight_data)} points ({resolution.lower()}, "
        f"{response.stored_points} stored)"
    )
    header = (
        f"{'time (UTC)':<27} {'lat':>10} {'lon':>11} {'alt ft':>7} {'kt':>5} "
        f"{'track':>6} {'ft/min':>7} ground"
    )
    click.echo(header)
    for p in response.flight_data:
        row = _point(p)
        ground = {True: "yes", False: "no", None: "-"}[row["on_ground"]]
        click.echo(
            f"{p.timestamp:<27} {p.latitude:>10.5f} {p.longitude:>11.5f} "
            f"{p.altitude:>7} {p.airspeed:>5} {_blank(row['track'], '.1f'):>6} "
            f"{_blank(row['vertical_rate']):>7} {ground}"
        )
