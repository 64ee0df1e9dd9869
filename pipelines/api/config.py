"""The API's configuration: environment variables, read when asked for (see docs/api.md)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

from pipelines import settings

DEFAULT_PORT = 50051


def _int(name: str, default: int, low: int, high: int) -> int:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        value = low - 1
    if not low <= value <= high:
        raise ValueError(f"{name} must be an integer from {low} to {high}, got {raw!r}")
    return value


def _path(name: str) -> Path | None:
    raw = os.environ.get(name, "").strip()
    return Path(raw) if raw else None


def api_tokens() -> tuple[str, ...]:
    """FLIGHTS_API_TOKEN: the bearer token(s) calls must carry; comma-separated to rotate."""
    raw = os.environ.get("FLIGHTS_API_TOKEN", "")
    return tuple(t.strip() for t in raw.split(",") if t.strip())


def api_target() -> str:
    """Where `flights get` connects: FLIGHTS_API_TARGET, else the local server's port."""
    target = os.environ.get("FLIGHTS_API_TARGET", "").strip()
    return target or f"127.0.0.1:{_int('FLIGHTS_API_PORT', DEFAULT_PORT, 0, 65535)}"


def tls_ca() -> Path | None:
    """FLIGHTS_API_TLS_CA: the certificate (or CA) clients trust for a TLS server."""
    return _path("FLIGHTS_API_TLS_CA")


@dataclass(frozen=True)
class ApiConfig:
    """How `flights serve` runs; every limit here is enforced per call."""

    database_url: str
    host: str = "127.0.0.1"
    port: int = DEFAULT_PORT
    workers: int = 8
    pool_size: int = 8
    db_role: str | None = None
    tokens: tuple[str, ...] = ()
    tls_cert: Path | None = None
    tls_key: Path | None = None
    max_points: int = 20_000
    stream_page_size: int = 5_000
    list_page_size: int = 100
    max_list_page_size: int = 1_000
    max_list_window: timedelta = field(default=timedelta(days=31))
    query_timeout: float = 30.0
    grace: float = 10.0
    max_message_bytes: int = 16 * 1024 * 1024
    max_concurrent_rpcs: int = 256
    prepare: bool = True
    # Streams: a client that stops reading holds a worker at most this long; streams take
    # at most max_streams workers (other calls always find one) and streams_per_client.
    stream_send_timeout: float = 10.0
    max_streams: int = 4
    streams_per_client: int = 2

    def __post_init__(self) -> None:
        if (self.tls_cert is None) != (self.tls_key is None):
            raise ValueError("TLS needs both FLIGHTS_API_TLS_CERT and FLIGHTS_API_TLS_KEY")

    @classmethod
    def from_env(cls) -> ApiConfig:
        workers = _int("FLIGHTS_API_WORKERS", 8, 1, 1024)
        return cls(
            database_url=settings.database_url(),
            host=os.environ.get("FLIGHTS_API_HOST", "").strip() or "127.0.0.1",
            port=_int("FLIGHTS_API_PORT", DEFAULT_PORT, 0, 65535),
            workers=workers,
            # A worker holds at most one connection at a time.
            pool_size=_int("FLIGHTS_API_POOL_SIZE", workers, 1, 1024),
            db_role=os.environ.get("FLIGHTS_API_DB_ROLE", "").strip() or None,
            tokens=api_tokens(),
            tls_cert=_path("FLIGHTS_API_TLS_CERT"),
            tls_key=_path("FLIGHTS_API_TLS_KEY"),
            max_points=_int("FLIGHTS_API_MAX_POINTS", 20_000, 2, 1_000_000),
            stream_page_size=_int("FLIGHTS_API_PAGE_SIZE", 5_000, 1, 1_000_000),
            max_list_window=timedelta(days=_int("FLIGHTS_API_MAX_LIST_DAYS", 31, 1, 3660)),
            query_timeout=float(_int("FLIGHTS_API_QUERY_TIMEOUT", 30, 1, 3600)),
            grace=float(_int("FLIGHTS_API_GRACE", 10, 0, 3600)),
            max_message_bytes=_int(
                "FLIGHTS_API_MAX_MESSAGE_BYTES", 16 * 1024 * 1024, 1024 * 1024, 1024 * 1024 * 1024
            ),
            max_concurrent_rpcs=_int("FLIGHTS_API_MAX_CONCURRENT_RPCS", 256, 1, 100_000),
            prepare=bool(_int("FLIGHTS_API_PREPARE", 1, 0, 1)),
            stream_send_timeout=float(_int("FLIGHTS_API_STREAM_SEND_TIMEOUT", 10, 1, 3600)),
            max_streams=_int("FLIGHTS_API_MAX_STREAMS", max(1, workers // 2), 1, workers),
            streams_per_client=_int("FLIGHTS_API_STREAMS_PER_CLIENT", 2, 1, 1024),
        )
