#!/usr/bin/env python3
"""Smoke test for scripts/pglite-server.mjs, using psycopg 3.

Starts the server on a free port, exercises what the test suite relies on
(TimescaleDB, COPY, large values, continuous aggregates, several connections
per database, isolated databases, rollback on disconnect, restart on a data
directory) and prints timings. Exits non-zero on the first failure.

    npm install --legacy-peer-deps   # once, for the server's packages
    python scripts/pglite-smoke.py   # needs psycopg >= 3 and node on PATH
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
from psycopg import errors, pq

ROOT = Path(__file__).resolve().parent.parent
SERVER = ROOT / "scripts" / "pglite-server.mjs"
T0 = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)


class Server:
    """The server as a subprocess; READY <port> tells where it listens."""

    def __init__(self, *args: str) -> None:
        self.proc = subprocess.Popen(
            ["node", str(SERVER), "--port", "0", *args],
            stdout=subprocess.PIPE,
            text=True,
        )
        line = self._read_line(timeout=60)
        if not line.startswith("READY "):
            self.proc.kill()
            raise RuntimeError(f"unexpected first line from the server: {line!r}")
        self.port = int(line.split()[1])

    def _read_line(self, timeout: float) -> str:
        result: list[str] = []
        reader = threading.Thread(target=lambda: result.append(self.proc.stdout.readline()))
        reader.daemon = True
        reader.start()
        reader.join(timeout)
        if not result:
            self.proc.kill()
            raise RuntimeError("the server did not print READY in time")
        return result[0].strip()

    def dsn(self, dbname: str, **extra: str) -> str:
        opts = {"host": "127.0.0.1", "port": str(self.port), "user": "smoke", "dbname": dbname}
        opts.update(extra)
        return " ".join(f"{k}={v}" for k, v in opts.items())

    def connect(self, dbname: str, autocommit: bool = False, **extra: str) -> psycopg.Connection:
        return psycopg.connect(
            self.dsn(dbname, **extra), autocommit=autocommit, prepare_threshold=None
        )

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                raise RuntimeError("the server did not exit on SIGTERM") from None
        return self.proc.returncode

    def assert_alive(self) -> None:
        assert self.proc.poll() is None, f"server exited with {self.proc.returncode}"


@contextmanager
def step(name: str) -> Iterator[None]:
    t = time.perf_counter()
    yield
    print(f"ok   {name} ({time.perf_counter() - t:.2f} s)", flush=True)


def rows(n: int, offset: int = 0) -> Iterator[tuple[dt.datetime, int]]:
    for i in range(offset, offset + n):
        yield T0 + dt.timedelta(seconds=5 * i), i % 1000


def raw_startup(port: int, dbname: str) -> socket.socket:
    """A bare protocol connection, for failure modes psycopg cannot produce."""
    s = socket.create_connection(("127.0.0.1", port))
    params = b"user\0smoke\0database\0" + dbname.encode() + b"\0\0"
    s.sendall(struct.pack("!ii", 8 + len(params), 196608) + params)
    buf = b""
    while not buf.endswith(b"Z\0\0\0\x05I"):
        chunk = s.recv(65536)
        assert chunk, "connection closed during startup"
        buf += chunk
    return s


def raw_msg(kind: bytes, body: bytes) -> bytes:
    return kind + struct.pack("!i", 4 + len(body)) + body


def main() -> None:
    srv = Server("--wait-timeout", "3", "--max-instances", "4")
    try:
        run_checks(srv)
        with step("server still answers; evicted databases come back empty"):
            srv.assert_alive()
            with srv.connect("smoke") as conn:
                assert conn.execute("SELECT to_regclass('metrics')").fetchone() == (None,)
                assert conn.execute("SELECT 1").fetchone() == (1,)
    finally:
        code = srv.stop()
    assert code == 0, f"server exit code {code} after SIGTERM"
    print("ok   server exited cleanly on SIGTERM", flush=True)
    check_data_dir_restart()
    print("ALL CHECKS PASSED")


def run_checks(srv: Server) -> None:
    print(f"server listening on port {srv.port}", flush=True)

    for sslmode in ("prefer", "disable"):
        with step(f"connect with sslmode={sslmode}"), srv.connect("smoke", sslmode=sslmode) as conn:
            assert conn.execute("SELECT 1").fetchone() == (1,)
            assert conn.info.parameter_status("TimeZone") == "UTC"

    with (
        step("CREATE EXTENSION timescaledb; license is 'timescale'"),
        srv.connect("smoke", autocommit=True) as conn,
    ):
        conn.execute("CREATE EXTENSION IF NOT EXISTS timescaledb")
        assert conn.execute("SHOW timescaledb.license").fetchone() == ("timescale",)
        conn.execute("CREATE TABLE metrics (ts timestamptz NOT NULL, v integer NOT NULL)")
        conn.execute("SELECT create_hypertable('metrics', 'ts')")
        conn.execute("CREATE TABLE blobs (id int PRIMARY KEY, body text)")

    expected_rows = 0
    with srv.connect("smoke") as conn:
        with step("executemany 5,000 rows"):
            with conn.cursor() as cur:
                cur.executemany("INSERT INTO metrics (ts, v) VALUES (%s, %s)", list(rows(5000)))
            conn.commit()
            expected_rows += 5000

        n = 200_000
        t = time.perf_counter()
        with conn.cursor() as cur, cur.copy("COPY metrics (ts, v) FROM STDIN") as copy:
            for r in rows(n, offset=5000):
                copy.write_row(r)
        conn.commit()
        elapsed = time.perf_counter() - t
        expected_rows += n
        print(
            f"ok   COPY text 200,000 rows ({elapsed:.2f} s, {n / elapsed:,.0f} rows/s)", flush=True
        )

        t = time.perf_counter()
        with (
            conn.cursor() as cur,
            cur.copy("COPY metrics (ts, v) FROM STDIN (FORMAT BINARY)") as copy,
        ):
            copy.set_types(["timestamptz", "int4"])
            for r in rows(n, offset=5000 + n):
                copy.write_row(r)
        conn.commit()
        elapsed = time.perf_counter() - t
        expected_rows += n
        print(
            f"ok   COPY binary 200,000 rows ({elapsed:.2f} s, {n / elapsed:,.0f} rows/s)",
            flush=True,
        )

        with step("COPY CSV and COPY TO STDOUT"), conn.cursor() as cur:
            with cur.copy("COPY blobs (id, body) FROM STDIN WITH (FORMAT csv)") as copy:
                copy.write(b'1,"a, quoted"\n2,plain\n')
            conn.commit()
            out = bytearray()
            with cur.copy("COPY (SELECT id, body FROM blobs ORDER BY id) TO STDOUT") as copy:
                for block in copy:
                    out += block
            assert bytes(out) == b"1\ta, quoted\n2\tplain\n", out
            conn.execute("DELETE FROM blobs")
            conn.commit()

        with step("COPY into a missing table fails cleanly"):
            try:
                with conn.cursor() as cur, cur.copy("COPY no_such_table FROM STDIN") as copy:
                    copy.write_row((1,))
            except errors.UndefinedTable:
                conn.rollback()
            else:
                raise AssertionError("COPY into a missing table succeeded")
            assert conn.execute("SELECT 1").fetchone() == (1,)
            conn.rollback()

        with step("COPY FROM STDIN mixed with other statements is refused, not fatal"):
            try:
                with conn.cursor() as cur, cur.copy("SELECT 1; COPY blobs FROM STDIN"):
                    pass
            except errors.FeatureNotSupported:
                conn.rollback()
            else:
                raise AssertionError("mixed COPY was accepted")
            assert conn.execute("SELECT 1").fetchone() == (1,)
            conn.rollback()

        with step("COPY through the extended query protocol (libpq)"):
            pgconn = conn.pgconn
            pgconn.send_query_params(b"COPY blobs (id, body) FROM STDIN", None)
            res = pgconn.get_result()
            assert res.status == pq.ExecStatus.COPY_IN, res.status
            assert pgconn.put_copy_data(b"10\tx\n11\ty\n") == 1
            assert pgconn.put_copy_end() == 1
            res = pgconn.get_result()
            assert res.status == pq.ExecStatus.COMMAND_OK, res.error_message
            assert res.command_status == b"COPY 2", res.command_status
            while pgconn.get_result() is not None:
                pass
            assert conn.execute("SELECT count(*) FROM blobs").fetchone() == (2,)
            conn.execute("DELETE FROM blobs")
            conn.commit()

        with step("10 MB text value round trip"):
            big = "0123456789abcdef" * (10 * 1024 * 1024 // 16)
            conn.execute("INSERT INTO blobs (id, body) VALUES (%s, %s)", (1, big))
            conn.commit()
            got = conn.execute("SELECT body FROM blobs WHERE id = 1").fetchone()[0]
            assert got == big
            conn.execute("DELETE FROM blobs")
            conn.commit()

        with step("row count after inserts"):
            assert conn.execute("SELECT count(*) FROM metrics").fetchone() == (expected_rows,)

    with (
        step("continuous aggregate + refresh_continuous_aggregate"),
        srv.connect("smoke", autocommit=True) as conn,
    ):
        conn.execute(
            """
            CREATE MATERIALIZED VIEW metrics_hourly
            WITH (timescaledb.continuous) AS
            SELECT time_bucket('1 hour', ts) AS bucket, count(*) AS n, sum(v) AS total
            FROM metrics GROUP BY bucket
            WITH NO DATA
            """
        )
        conn.execute("CALL refresh_continuous_aggregate('metrics_hourly', NULL, NULL)")
        agg = conn.execute(
            "SELECT sum(n)::bigint, sum(total)::bigint FROM metrics_hourly"
        ).fetchone()
        raw = conn.execute("SELECT count(*), sum(v)::bigint FROM metrics").fetchone()
        assert agg == raw, (agg, raw)
        assert conn.execute("SELECT count(*) FROM metrics_hourly").fetchone()[0] > 100

    with step("two connections on one database take turns at transaction boundaries"):
        with srv.connect("turns", autocommit=True) as setup:
            setup.execute("CREATE TABLE t (i int)")
        with srv.connect("turns") as a, srv.connect("turns") as b:
            a.execute("INSERT INTO t VALUES (1)")
            a.commit()
            assert b.execute("SELECT count(*) FROM t").fetchone() == (1,)
            b.commit()

            a.execute("INSERT INTO t VALUES (2)")  # a now holds a transaction
            seen: list[int] = []
            waiter = threading.Thread(
                target=lambda: seen.append(b.execute("SELECT count(*) FROM t").fetchone()[0])
            )
            waiter.start()
            time.sleep(0.5)
            assert waiter.is_alive() and not seen, "b ran inside a's transaction"
            a.commit()
            waiter.join(10)
            assert seen == [2], seen
            b.commit()

            # Extended protocol from both sides, interleaved.
            for i in range(20):
                a.execute("INSERT INTO t VALUES (%s)", (i,))
                a.commit()
                assert b.execute("SELECT count(*) FROM t WHERE i = %s", (i,)).fetchone()[0] >= 1
                b.commit()

    with step("prepared statements of two connections do not collide"):
        dsn = srv.dsn("turns")
        with (
            psycopg.connect(dsn, prepare_threshold=0) as a,
            psycopg.connect(dsn, prepare_threshold=0) as b,
        ):
            for i in range(5):
                # Same statement names (_pg3_0, ...) on both, different queries.
                assert a.execute("SELECT %s::int + 1", (i,)).fetchone() == (i + 1,)
                a.commit()
                assert b.execute("SELECT %s::text || 'x'", (str(i),)).fetchone() == (f"{i}x",)
                b.commit()
            a.execute("SELECT 1")
            a.rollback()  # psycopg follows a ROLLBACK with DEALLOCATE ALL
            assert b.execute("SELECT %s::text || 'y'", ("b",)).fetchone() == ("by",)
            b.commit()
            with a.pipeline(), a.cursor() as cur:
                cur.executemany("INSERT INTO t VALUES (%s)", [(1000 + i,) for i in range(50)])
                a.execute("SELECT %s::int + 1", (1,))
                a.execute("ROLLBACK")
            assert b.execute("SELECT count(*) FROM t WHERE i >= 1000").fetchone() == (0,)
            b.commit()
            names = b.execute("SELECT name FROM pg_prepared_statements").fetchall()
            assert len(names) == len({n for (n,) in names}), names

    with (
        step("a waiting connection times out instead of hanging (--wait-timeout 3)"),
        srv.connect("turns") as a,
        srv.connect("turns") as b,
    ):
        a.execute("INSERT INTO t VALUES (100)")
        t = time.perf_counter()
        try:
            b.execute("SELECT count(*) FROM t")
        except errors.LockNotAvailable:
            pass
        else:
            raise AssertionError("b did not time out")
        assert 2.5 < time.perf_counter() - t < 10
        b.rollback()
        a.commit()
        assert b.execute("SELECT count(*) FROM t WHERE i = 100").fetchone() == (1,)

    with (
        step("two database names are isolated"),
        srv.connect("iso_a", autocommit=True) as a,
        srv.connect("iso_b", autocommit=True) as b,
    ):
        a.execute("CREATE TABLE only_in_a (i int)")
        assert a.execute("SELECT to_regclass('only_in_a') IS NOT NULL").fetchone() == (True,)
        assert b.execute("SELECT to_regclass('only_in_a') IS NULL").fetchone() == (True,)

    with step("a client disconnecting mid-transaction leaves no trace"):
        with srv.connect("turns", autocommit=True) as conn:
            conn.execute("CREATE TABLE gone (i int)")

        # Closed politely while a transaction is open.
        c1 = srv.connect("turns")
        c1.execute("INSERT INTO gone VALUES (1)")
        c1.close()

        # Socket cut while a transaction is open.
        c2 = srv.connect("turns")
        c2.execute("INSERT INTO gone VALUES (2)")
        socket.socket(fileno=os.dup(c2.fileno())).shutdown(socket.SHUT_RDWR)
        c2.close()

        # Socket cut in the middle of an extended-protocol batch (no Sync).
        s = raw_startup(srv.port, "turns")
        sql = b"INSERT INTO gone VALUES (3)\0"
        s.sendall(
            raw_msg(b"P", b"\0" + sql + b"\0\0")
            + raw_msg(b"B", b"\0\0" + b"\0\0" + b"\0\0" + b"\0\0")
            + raw_msg(b"E", b"\0" + b"\0\0\0\0")
        )
        time.sleep(0.3)
        s.close()

        # A SSL request followed by a cancel request must not disturb anything.
        s = socket.create_connection(("127.0.0.1", srv.port))
        s.sendall(struct.pack("!ii", 8, 80877103))
        assert s.recv(1) == b"N"
        s.close()
        s = socket.create_connection(("127.0.0.1", srv.port))
        s.sendall(struct.pack("!iiii", 16, 80877102, 1, 2))
        s.close()

        time.sleep(0.3)
        with srv.connect("turns") as conn:
            assert conn.execute("SELECT count(*) FROM gone").fetchone() == (0,)
            assert conn.info.transaction_status == pq.TransactionStatus.INTRANS

    with step("session state is reset when the last client leaves"):
        with srv.connect("turns") as conn:
            conn.execute("SET statement_timeout = '1234s'")
            conn.execute("CREATE TEMP TABLE scratch (i int)")
            conn.commit()
        with srv.connect("turns") as conn:
            assert conn.execute("SHOW statement_timeout").fetchone() == ("0",)
            assert conn.execute("SELECT to_regclass('scratch')").fetchone() == (None,)
            assert conn.execute("SHOW search_path").fetchone() == ("public",)
            assert conn.execute("SELECT count(*) FROM t").fetchone()[0] > 0
            conn.rollback()
            conn.autocommit = True
            conn.execute("DISCARD ALL")
            assert conn.execute("SHOW search_path").fetchone() == ("public",)
            assert conn.execute("SHOW TimeZone").fetchone() == ("UTC",)
            assert conn.info.parameter_status("TimeZone") == "UTC"

    with step("least recently used databases are evicted beyond --max-instances"):
        for i in range(5):
            with srv.connect(f"evict_{i}", autocommit=True) as conn:
                conn.execute("CREATE TABLE x (i int)")
        srv.assert_alive()


def check_data_dir_restart() -> None:
    data_dir = tempfile.mkdtemp(prefix="pglite-smoke-")
    try:
        with step("data directory: hypertable survives a restart"):
            srv = Server("--data-dir", data_dir)
            try:
                with srv.connect("persist", autocommit=True) as conn:
                    conn.execute("CREATE EXTENSION IF NOT EXISTS timescaledb")
                    conn.execute("CREATE TABLE h (ts timestamptz NOT NULL, v int)")
                    conn.execute("SELECT create_hypertable('h', 'ts')")
                    conn.execute("INSERT INTO h VALUES ('2024-01-01', 1)")
            finally:
                assert srv.stop() == 0
            assert (Path(data_dir) / "persist").is_dir()
            srv = Server("--data-dir", data_dir)
            try:
                with srv.connect("persist", autocommit=True) as conn:
                    conn.execute("INSERT INTO h VALUES ('2024-02-01', 2)")
                    assert conn.execute("SELECT count(*) FROM h").fetchone() == (2,)
            finally:
                assert srv.stop() == 0
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)


if __name__ == "__main__":
    try:
        main()
    except Exception:
        import traceback

        traceback.print_exc()
        print("SMOKE TEST FAILED", file=sys.stderr)
        sys.exit(1)
