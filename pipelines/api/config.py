"""The API's configuration, from the settings (see docs/api.md), read when asked for."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

from pipelines import settings

DEFAULT_PORT = 50051


def api_tokens() -> tuple[str, ...]:
    """FLIGHTS_API_TOKEN: the bearer token(s) calls must carry; comma-separated to rotate."""
    return tuple(t.strip() for t in settings.load().api_token.split(",") if t.strip())


def api_target() -> str:
    """Where `flights get` connects: FLIGHTS_API_TARGET, else the local server's port."""
    configured = settings.load()
    return configured.api_target or f"127.0.0.1:{configured.api_port}"


def tls_ca() -> Path | None:
    """FLIGHTS_API_TLS_CA: the certificate (or CA) clients trust for a TLS server."""
    return settings.load().api_tls_ca


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

    def __post_init__(self) -> None:
        if (self.tls_cert is None) != (self.tls_key is None):
            raise ValueError("TLS needs both FLIGHTS_API_TLS_CERT and FLIGHTS_API_TLS_KEY")

    @classmethod
    def from_settings(cls) -> ApiConfig:
        configured = settings.load()
        return cls(
            database_url=settings.database_url(),
            host=configured.api_host,
            port=configured.api_port,
            workers=configured.api_workers,
            # A worker holds at most one connection at a time.
            pool_size=configured.api_pool_size or configured.api_workers,
            db_role=configured.api_db_role,
            tokens=api_tokens(),
            tls_cert=configured.api_tls_cert,
            tls_key=configured.api_tls_key,
            max_points=configured.api_max_points,
            stream_page_size=configured.api_page_size,
            max_list_window=timedelta(days=configured.api_max_list_days),
            query_timeout=float(configured.api_query_timeout),
            grace=float(configured.api_grace),
            max_message_bytes=configured.api_max_message_bytes,
            max_concurrent_rpcs=configured.api_max_concurrent_rpcs,
            prepare=configured.api_prepare,
        )
