"""The retry policy of every step that touches a database: transient failures (connection
refused or lost, server shutting down, serialization failure, deadlock) are retried with
exponential backoff and jitter; anything else fails the step at once with its message.

The backoff is the same one `flights clean` and the API use (pipelines.warehouse.connection):
each step's work is one transaction or idempotent statements, so running it again is safe.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import dagster as dg

from pipelines.warehouse.connection import DATABASE_BACKOFF, is_transient

DATABASE_RETRY = dg.RetryPolicy(
    max_retries=DATABASE_BACKOFF.retries,
    delay=DATABASE_BACKOFF.first_delay,
    backoff=dg.Backoff.EXPONENTIAL,
    jitter=dg.Jitter.PLUS_MINUS,
)


@contextmanager
def permanent_errors_fail_at_once() -> Iterator[None]:
    """Lets transient database failures reach DATABASE_RETRY; turns every other error into a
    failure that is not retried (bad SQL, bad data, authentication: retrying changes
    nothing)."""
    try:
        yield
    except dg.Failure:
        raise  # already says what failed and whether to retry
    except Exception as exc:
        if is_transient(exc):
            raise
        lines = str(exc).strip().splitlines()
        reason = f"{type(exc).__name__}: {lines[0] if lines else 'no message'}"
        raise dg.Failure(description=reason, allow_retries=False) from exc
