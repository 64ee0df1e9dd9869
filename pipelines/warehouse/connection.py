"""Connections to the flight store."""

from __future__ import annotations

from typing import Any

import psycopg


def connect(url: str, **kwargs: Any) -> psycopg.Connection:
    """A connection with server-side prepared statements off.

    Statement names are per session; behind a transaction-pooling proxy (PgBouncer, the test
    server) two clients share a session and their `_pg3_N` names collide. The queries here
    are few and large, so preparing them buys nothing.
    """
    return psycopg.connect(url, prepare_threshold=None, **kwargs)
