"""Connections to the flight store, and the one policy for retrying its transient failures."""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import unquote

import psycopg
from psycopg.conninfo import conninfo_to_dict

from pipelines.settings import POSTGRES_SCHEMES, url_password, url_scheme

T = TypeVar("T")


# SQLSTATEs after which the same work, started again, can succeed: the server went away or
# is restarting (57P01-57P03, class 08), or the transaction lost a race (40001, 40P01).
TRANSIENT_SQLSTATES = frozenset({"40001", "40P01", "57P01", "57P02", "57P03", "53300"})
TRANSIENT_SQLSTATE_CLASSES = ("08",)

# A connection refused by a running server carries no SQLSTATE, only the server's FATAL
# message: these say "try again soon"; any other FATAL (unknown role or database, bad
# password, pg_hba) is permanent.
TRANSIENT_FATAL_MESSAGES = (
    "the database system is shutting down",
    "the database system is starting up",
    "the database system is in recovery mode",
    "the database system is not yet accepting connections",
    "the database system is not accepting connections",
    "sorry, too many clients already",
    "terminating connection due to administrator command",
)


def connect(url: str, **kwargs: Any) -> psycopg.Connection:
    """A connection with server-side prepared statements off.

    Statement names are per session; behind a transaction-pooling proxy (PgBouncer, the test
    server) two clients share a session and their `_pg3_N` names collide. The queries here
    are few and large, so preparing them buys nothing.
    """
    scheme = url_scheme(url)
    if scheme is not None and scheme not in POSTGRES_SCHEMES:
        # libpq would say `missing "=" after ...`: it reads any other URL as key=value text.
        raise ValueError(
            f"the flight store must be PostgreSQL with TimescaleDB, not {scheme}://; set "
            "FLIGHTS_DATABASE_URL=postgresql://user@host:5432/flights (or unset it for the "
            "local server, `flights db up`)"
        )
    check_conninfo(url)
    return psycopg.connect(url, prepare_threshold=None, **kwargs)


def first_line(exc: BaseException) -> str:
    """An error's first line (libpq's run over several), or its type's name when it has none."""
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


def check_conninfo(url: str) -> None:
    """Fails, with libpq's reason but not the text it quotes (it may be the password), when
    `url` is not a connection URL or key=value string libpq can parse."""
    try:
        parsed = conninfo_to_dict(url)
    except psycopg.ProgrammingError as exc:
        # Only what precedes libpq's first quote: what it quotes may hold the password, and
        # a password's own quotes make any later quote ambiguous.
        reason = str(exc).strip()
        head = reason.split('"', 1)[0].rstrip()
        if head != reason:
            reason = f"{head} …"
        raise psycopg.ProgrammingError(
            f"the database URL cannot be parsed ({reason}); the form is "
            "postgresql://user:password@host:5432/dbname, with special characters of the "
            "password percent-encoded"
        ) from None
    # A password with an unencoded `@` or `/` parses as part of the host, port or database
    # name, which connection errors then show: refused before it is tried.
    written = url_password(url)
    if written and parsed.get("password") != unquote(written):
        raise psycopg.ProgrammingError(
            "the database URL's password has characters libpq reads as the URL's next part "
            "(such as @ or /): percent-encode them (@ as %40, / as %2F)"
        )


def is_transient(exc: BaseException) -> bool:
    """Whether `exc` is a database failure that a later attempt can get past: connection
    refused or lost, server shutting down or starting, serialization failure, deadlock.
    Bad SQL, bad data, permissions and authentication are permanent."""
    if not isinstance(exc, psycopg.Error):
        return False
    state = exc.sqlstate
    if state is not None:
        return state in TRANSIENT_SQLSTATES or state.startswith(TRANSIENT_SQLSTATE_CLASSES)
    if not isinstance(exc, psycopg.OperationalError):
        return False
    message = str(exc)
    if "FATAL:" not in message:
        return True  # refused, timed out, or closed under us: nothing the server decided
    return any(phrase in message for phrase in TRANSIENT_FATAL_MESSAGES)


@dataclass(frozen=True)
class Backoff:
    """Exponential backoff with jitter, computed as Dagster's RetryPolicy computes
    `Backoff.EXPONENTIAL` with `Jitter.PLUS_MINUS`: retry n waits first_delay * (2**n - 1),
    plus or minus up to first_delay. Six retries from one second wait about two minutes in
    all: long enough for a database restart, short enough to fail when it is really gone."""

    retries: int = 6
    first_delay: float = 1.0

    def delay(self, retry: int) -> float:
        """Seconds to wait before retry number `retry` (1 for the first retry)."""
        jitter = random.uniform(-self.first_delay, self.first_delay)  # noqa: S311 - not crypto
        return max(0.0, self.first_delay * (2.0**retry - 1) + jitter)

    def delays(self) -> Iterator[float]:
        return (self.delay(retry) for retry in range(1, self.retries + 1))


DATABASE_BACKOFF = Backoff()


def retrying(
    action: Callable[[], T],
    *,
    backoff: Backoff = DATABASE_BACKOFF,
    on_retry: Callable[[BaseException, float], None] | None = None,
) -> T:
    """Runs `action`, again after a backoff while it fails transiently; the last failure, or
    the first permanent one, is raised as it is. `action` must be safe to repeat: one
    transaction, or steps that are each idempotent."""
    for wait in backoff.delays():
        try:
            return action()
        except psycopg.Error as exc:
            if not is_transient(exc):
                raise
            if on_retry is not None:
                on_retry(exc, wait)
            time.sleep(wait)
    return action()
