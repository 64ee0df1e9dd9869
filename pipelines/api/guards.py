"""What keeps the API serving when clients or the database misbehave.

- StreamGate: a server stream occupies a worker thread while its next message waits to be
  sent, and a client that stops reading makes that wait endless (HTTP/2 flow control). The
  gate admits at most `total` streams at once (other calls always find a worker) and
  `per_client` from one client address, and cancels a stream whose client has not taken its
  message within `send_timeout`, which frees the worker.
- StoreAvailability: with the database down every call would wait for a connection until its
  deadline. After the first connection failure calls fail at once with UNAVAILABLE while a
  background probe reconnects with backoff and jitter; when it succeeds, the pool's broken
  connections are replaced and calls are served again, with nobody restarting anything.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager

import grpc
import psycopg
from psycopg_pool import ConnectionPool, PoolTimeout

from pipelines.warehouse.connection import Backoff, is_transient

log = logging.getLogger(__name__)


class Refused(Exception):
    """A call refused before it starts, with the status the caller gets."""

    def __init__(self, code: grpc.StatusCode, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def client_address(context: grpc.ServicerContext) -> str:
    """The caller's address without its port (`ipv4:10.0.0.7:53122` -> `ipv4:10.0.0.7`)."""
    peer = context.peer() or "unknown"
    return peer.rsplit(":", 1)[0] if peer.count(":") > 1 else peer


class StreamGate:
    def __init__(self, *, total: int, per_client: int, send_timeout: float) -> None:
        self.total = total
        self.per_client = per_client
        self.send_timeout = send_timeout
        self._changed = threading.Condition()
        self._open: Counter[str] = Counter()
        self._deadlines: dict[grpc.ServicerContext, float] = {}
        self._closed = False
        self._watcher = threading.Thread(target=self._watch, name="stream-watch", daemon=True)
        self._watcher.start()

    @contextmanager
    def admit(self, context: grpc.ServicerContext) -> Iterator[None]:
        client = client_address(context)
        with self._changed:
            if sum(self._open.values()) >= self.total:
                raise Refused(
                    grpc.StatusCode.RESOURCE_EXHAUSTED,
                    f"the server already streams {self.total} responses; retry later",
                )
            if self._open[client] >= self.per_client:
                raise Refused(
                    grpc.StatusCode.RESOURCE_EXHAUSTED,
                    f"at most {self.per_client} concurrent streams per client; "
                    "finish or cancel one first",
                )
            self._open[client] += 1
        try:
            yield
        finally:
            with self._changed:
                self._open[client] -= 1
                if not self._open[client]:
                    del self._open[client]
                self._deadlines.pop(context, None)

    @property
    def open_streams(self) -> int:
        with self._changed:
            return sum(self._open.values())

    def sending(self, context: grpc.ServicerContext) -> None:
        """The stream's next message is handed to gRPC: it must be taken in time."""
        with self._changed:
            self._deadlines[context] = time.monotonic() + self.send_timeout
            self._changed.notify()

    def sent(self, context: grpc.ServicerContext) -> None:
        with self._changed:
            self._deadlines.pop(context, None)

    def close(self) -> None:
        with self._changed:
            self._closed = True
            self._changed.notify()
        self._watcher.join(timeout=5)

    def _watch(self) -> None:
        with self._changed:
            while not self._closed:
                now = time.monotonic()
                expired = [c for c, due in self._deadlines.items() if due <= now]
                for context in expired:
                    del self._deadlines[context]
                    log.warning(
                        "stream to %s cancelled: its client took no message for %.0f s",
                        context.peer(),
                        self.send_timeout,
                    )
                    context.cancel()  # the worker's pending send ends, the worker is free
                wait = min(self._deadlines.values(), default=now + 60) - now
                self._changed.wait(timeout=max(wait, 0.01))


class StoreAvailability:
    def __init__(self, url: str, pool: ConnectionPool, backoff: Backoff | None = None) -> None:
        self._url = url
        self._pool = pool
        self._backoff = backoff or Backoff(first_delay=0.25)
        self._lock = threading.Lock()
        self._down = False
        self._probing = False

    def check(self) -> None:
        """Refuses the call at once while the store is known to be unreachable."""
        if self._down:
            raise Refused(
                grpc.StatusCode.UNAVAILABLE, "the flight store is unavailable; retry later"
            )

    def noticed(self, exc: BaseException) -> None:
        """A call failed with `exc`: a lost or refused connection takes the store down until
        the probe reaches it; a pool timeout (busy, or down) starts a probe to find out."""
        if isinstance(exc, PoolTimeout):
            self._probe(down=False)
        elif isinstance(exc, psycopg.OperationalError) and is_transient(exc):
            self._probe(down=True)

    def _probe(self, *, down: bool) -> None:
        with self._lock:
            self._down = self._down or down
            if self._probing:
                return
            self._probing = True
        threading.Thread(target=self._reconnect, name="store-probe", daemon=True).start()

    def _reconnect(self) -> None:
        retry = 0
        while True:
            try:
                psycopg.connect(self._url, connect_timeout=2).close()
            except psycopg.Error as exc:
                with self._lock:
                    if not self._down:
                        log.warning("flight store unreachable, failing calls fast: %s", exc)
                    self._down = True
                retry = min(retry + 1, 4)  # then every 4 s or so
                time.sleep(self._backoff.delay(retry))
                continue
            if self._down:
                self._pool.check()  # replace the connections that died with the server
                log.info("flight store reachable again")
            with self._lock:
                self._down = False
                self._probing = False
            return
