"""Connections to the flight store."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import psycopg

POSTGRES_SCHEMES = ("postgres", "postgresql")


def connect(url: str, **kwargs: Any) -> psycopg.Connection:
    """A connection with server-side prepared statements off.

    Statement names are per session; behind a transaction-pooling proxy (PgBouncer, the test
    server) two clients share a session and their `_pg3_N` names collide. The queries here
    are few and large, so preparing them buys nothing.
    """
    scheme = urlsplit(url).scheme if "://" in url else None
    if scheme is not None and scheme not in POSTGRES_SCHEMES:
        # libpq would say `missing "=" after ...`: it reads any other URL as key=value text.
        raise ValueError(
            f"the flight store must be PostgreSQL with TimescaleDB, not {scheme}://; set "
            "FLIGHTS_DATABASE_URL=postgresql://user@host:5432/flights (or unset it for the "
            "local server, `flights db up`)"
        )
    return psycopg.connect(url, prepare_threshold=None, **kwargs)
