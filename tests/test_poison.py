"""Hostile drops through `flights ingest` on a real database: one bad byte costs one record.

One landing day holds a file per kind of poison (NUL in every format, a length near 2**64,
epoch times beyond the calendar, a name that is not UTF-8, cut gzip streams, an unreadable
folder, an empty gzip, files still being written, a symlink out of the zone) and a second
day is a symlink to the first. The run must exit 0, store the good records exactly,
quarantine each bad one with a reason naming what is wrong, and change nothing when re-run.
"""

from __future__ import annotations

import gzip
import json
import os
import shutil
import stat
import subprocess
import sys
import zlib
from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path

import dagster as dg
import pytest

from pipelines.assets.landing_sensor import landing_zone_sensor
from pipelines.assets.resources import FlightStore, LandingZone
from pipelines.proto.flight_pb2 import FlightData
from pipelines.warehouse.connection import connect
from tests.drops_factory import framed, message, write_pb
from tests.test_ingest import snapshot
from tests.test_wire_differential import tag, varint

FLIGHTS = str(Path(sys.executable).with_name("flights"))
DAY, LINKED_DAY = date(2024, 3, 1), date(2024, 3, 2)
EPOCH_10H = 1_709_287_200  # 2024-03-01T10:00:00Z
OPENSKY_TAIL = ("False", "False", "False", "1000", "10000", "", "", "")  # onground..lastcontact


def at(i: int) -> datetime:
    """The time `message(i)` carries."""
    return datetime(2024, 3, 1, 10, i // 60 % 60, i % 60, tzinfo=UTC)


def json_line(flight_id: str, i: int, **fields: object) -> str:
    record: dict[str, object] = {
        "flight_id": flight_id,
        "latitude": 45.0,
        "longitude": 7.0,
        "altitude": 30000,
        "airspeed": 450,
        "timestamp": at(i).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }
    record.update(fields)
    return json.dumps(record)


def write_lines(path: Path, lines: list[str | bytes], *, gz: bool = False) -> bytes:
    data = b"".join((line if isinstance(line, bytes) else line.encode()) + b"\n" for line in lines)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(gzip.compress(data) if gz else data)
    return data


def whole_records_before_cut(compressed: bytes, plain: bytes, ends: list[int]) -> int:
    """How many records lie wholly in what the cut gzip still decompresses to."""
    kept = zlib.decompressobj(wbits=31).decompress(compressed)
    assert plain.startswith(kept)
    return sum(end <= len(kept) for end in ends)


def unprivileged() -> list[str]:
    """A command prefix under which an unreadable folder is unreadable (root ignores modes)."""
    if os.geteuid() != 0:
        return []
    setpriv = shutil.which("setpriv")
    assert setpriv, "root needs setpriv to drop the capability to read any folder"
    return [setpriv, "--bounding-set", "-dac_override,-dac_read_search"]


class Landing:
    """The poisoned day, and what the run must make of it."""

    def __init__(self, root: Path, outside: Path) -> None:
        self.root = root
        self.folder = root / DAY.isoformat()
        self.stored: set[tuple[str, datetime]] = set()
        self.rejects: dict[tuple[str, int | None], str] = {}  # (file, line) -> in its reason
        self.skipped = 0
        self._build(outside)

    def expect(self, name: str, line: int | None, reason: str) -> None:
        self.rejects[(f"{DAY}/{name}", line)] = reason

    def _build(self, outside: Path) -> None:
        f = self.folder
        # NUL in every text field of protobuf ...
        write_pb(
            f / "nul.pb",
            [
                message(0, "pbnul"),
                message(1, "pb\x00x"),
                message(2, "pbnul", airline="Air\x00"),
                message(3, "pbnul", timestamp="2024-03-01T10:00:03\x00Z"),
                message(4, "pbnul", departure_airport="G\x00"),
                message(5, "pbnul"),
            ],
        )
        self.stored |= {("pbnul", at(0)), ("pbnul", at(5))}
        self.expect("nul.pb", 2, "flight_id: holds a control character")
        self.expect("nul.pb", 3, "airline: holds a control character")
        self.expect("nul.pb", 4, "timestamp: not ISO 8601")
        self.expect("nul.pb", 5, "departure_airport: holds a control character")
        # ... JSON Lines (an escaped NUL, and binary content) ...
        write_lines(
            f / "nul.jsonl",
            [
                json_line("jsnul", 60),
                json_line("js\x00", 61),
                b"\x00\x01\xff\xfe\x00binary",
                json_line("jsnul", 63, arrival_airport="L\x00HR"),
                json_line("jsnul", 64, timestamp="2024-03-01T10:01:04Z\x00"),
            ],
        )
        self.stored.add(("jsnul", at(60)))
        self.expect("nul.jsonl", 2, "flight_id: holds a control character")
        self.expect("nul.jsonl", 3, "not valid JSON")
        self.expect("nul.jsonl", 4, "arrival_airport: holds a control character")
        self.expect("nul.jsonl", 5, "timestamp: not ISO 8601")
        # ... and an OpenSky callsign.
        rows = [
            ",".join(
                [str(EPOCH_10H + 7), icao, "46.5", "7.5", "200", "90", "0", callsign, *OPENSKY_TAIL]
            )
            for icao, callsign in (("4b1801", "SWR1\x00"), ("4b1802", "SWR2"))
        ]
        header = "time,icao24,lat,lon,velocity,heading,vertrate,callsign,onground,alert,spi,"
        header += "squawk,baroaltitude,geoaltitude,lastposupdate,lastcontact"
        write_lines(f / "states_2024-03-01-10.csv", [header, *rows])
        self.expect("states_2024-03-01-10.csv", 2, "callsign: holds a control character")
        # A length near 2**64 inside a message, a field number past 2**29; and what the
        # official parser accepts: an unknown group, a known field with another wire type,
        # more than 64 fields.
        base = FlightData(flight_id="pbwire", timestamp="2024-03-01T10:02:01Z").SerializeToString()
        payloads = [
            message(120, "pbwire").SerializeToString(),
            base + tag(11, 2) + varint((1 << 64) - 1) + b"x",
            base + tag(1 << 29, 0) + varint(1),
            message(123, "pbwire").SerializeToString()
            + tag(12, 3)
            + tag(4, 0)
            + b"\x05"
            + tag(12, 4),
            message(124, "pbwire").SerializeToString() + tag(4, 1) + bytes(8),
            message(125, "pbwire").SerializeToString() + (tag(7, 2) + b"\x01A") * 70,
        ]
        (f / "wire.pb").write_bytes(b"".join(varint(len(p)) + p for p in payloads))
        self.stored |= {("pbwire", at(i)) for i in (120, 123, 124, 125)}
        self.expect("wire.pb", 2, "undecodable message: field 11: length")
        self.expect("wire.pb", 3, "undecodable message: tag at byte")
        # Epoch times beyond the calendar, and impossible dates.
        epochs: list[object] = ["1e30", "inf", 1e30, "18446744073709547616", "-1", "-1e30"]
        epochs += ["1999-12-31T23:59:59Z", "2024-02-30T10:00:00Z", "9999-12-31T00:00:00Z"]
        write_lines(
            f / "epoch.jsonl",
            [json_line("epoch", 180, timestamp=str(EPOCH_10H + 180))]
            + [json_line("epoch", 181 + k, timestamp=t) for k, t in enumerate(epochs)],
        )
        self.stored.add(("epoch", at(180)))
        for k in range(len(epochs)):
            self.expect("epoch.jsonl", k + 2, "timestamp")
        # A file name that is not UTF-8: read, and shown escaped.
        write_pb(
            Path(os.fsdecode(bytes(f) + b"/odd\xffname.pb")),
            [message(240, "oddname"), message(241, "oddname", latitude=91.0)],
        )
        self.stored.add(("oddname", at(240)))
        self.expect("odd\\xffname.pb", 2, "latitude: in_range")
        # Gzip cut short: every whole record before the cut is kept.
        messages = [message(300 + i, "gzcut") for i in range(400)]
        plain = framed(messages)
        ends, end = [], 0
        for m in messages:
            end += len(varint(m.ByteSize())) + m.ByteSize()
            ends.append(end)
        compressed = gzip.compress(plain)[: -len(gzip.compress(plain)) // 3]
        (f / "cut.pb.gz").write_bytes(compressed)
        kept = whole_records_before_cut(compressed, plain, ends)
        assert 0 < kept < len(messages)
        self.stored |= {("gzcut", at(300 + i)) for i in range(kept)}
        self.expect("cut.pb.gz", kept + 1, "truncated message")
        self.expect("cut.pb.gz", None, "stream unreadable after decompressed byte")
        lines = [json_line("gzjs", 700 + i) for i in range(400)]
        plain = write_lines(f / "cut.jsonl.gz", lines, gz=True)
        compressed = (f / "cut.jsonl.gz").read_bytes()[:-700]
        (f / "cut.jsonl.gz").write_bytes(compressed)
        line_ends = [sum(len(x) + 1 for x in lines[: i + 1]) for i in range(len(lines))]
        kept = whole_records_before_cut(compressed, plain, line_ends)
        self.stored |= {("gzjs", at(700 + i)) for i in range(kept)}
        self.expect("cut.jsonl.gz", kept + 1, "not valid JSON")
        self.expect("cut.jsonl.gz", None, "stream unreadable after decompressed byte")
        # An empty gzip is an empty file; an unreadable folder is a record, never silence.
        (f / "empty.pb.gz").write_bytes(gzip.compress(b""))
        self.expect("empty.pb.gz", None, "empty file")
        write_pb(f / "locked" / "inside.pb", [message(400, "locked")])
        (f / "locked").chmod(0)
        self.expect("locked", None, "folder cannot be read: Permission denied")
        # NaN and Infinity: rejected, and the quarantine's raw_record is still JSON.
        write_lines(
            f / "nonfinite.jsonl",
            [json_line("nonfin", 420, latitude=float("inf"), altitude=float("-inf"))],
        )
        self.expect("nonfinite.jsonl", 1, "latitude: in_range")
        # Not drops: hidden names, files still being written.
        hidden = [message(500, "hidden")]
        for name in (".hidden.pb", "incoming.pb.part", "late.pb.tmp", ".staging/x.pb"):
            write_pb(f / name, hidden)
        self.skipped = 4  # the hidden folder counts once
        # A symlink out of the landing zone is refused.
        (f / "out.pb").symlink_to(write_pb(outside / "secret.pb", [message(600, "secret")]))
        self.expect("out.pb", None, "symlink points outside the landing zone")
        # The next day is the same folder through a symlink: read once, by its owner.
        (self.root / LINKED_DAY.isoformat()).symlink_to(DAY.isoformat())

    def restore(self) -> None:
        (self.folder / "locked").chmod(stat.S_IRWXU)


@pytest.fixture
def landing(tmp_path: Path) -> Iterator[Landing]:
    made = Landing(tmp_path / "landing", tmp_path / "outside")
    yield made
    made.restore()


def run_ingest(url: str, root: Path) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "FLIGHTS_DATABASE_URL": url,
        "FLIGHTS_MAX_REJECT_RATE": "1",
        "COLUMNS": "200",
    }
    args = ["ingest", "--from", str(DAY), "--to", str(LINKED_DAY), "--landing", str(root)]
    return subprocess.run(
        [*unprivileged(), FLIGHTS, *args], capture_output=True, text=True, env=env, timeout=600
    )


@pytest.mark.apache
def test_poisoned_drops_cost_only_their_records(
    apache_url: str, flights_env: Path, landing: Landing
) -> None:
    first = run_ingest(apache_url, landing.root)
    # The linked day's only entry is the first day's folder: it has no drops of its own, so
    # the call fails loudly for it and changes nothing of it.
    assert first.returncode == 1, first.stdout + first.stderr
    assert f"no drops for {LINKED_DAY}" in first.stderr, first.stderr
    with connect(apache_url) as conn:
        loads = {
            row[0]: row[1:]
            for row in conn.execute(
                "SELECT partition_day, files, rows_read, rows_stored, rows_quarantined, "
                "duplicates FROM partition_loads"
            )
        }
        stored = {
            (fid, ts)
            for fid, ts in conn.execute("SELECT flight_id, timestamp FROM flight_data")
            if fid is not None
        }
        opensky = conn.execute(
            "SELECT m.icao24, m.callsign, d.latitude FROM flight_data d "
            "JOIN flight_metadata m USING (flight_id) WHERE m.icao24 IS NOT NULL"
        ).fetchall()
        quarantined = conn.execute(
            "SELECT source_file, line, reason, raw_record FROM quarantine WHERE partition_day = %s",
            (DAY,),
        ).fetchall()
    files, read, kept, rejected, duplicates = loads[DAY]
    assert read == kept + rejected + duplicates
    assert LINKED_DAY not in loads
    assert opensky == [("4b1802", "SWR2", 46.5)]
    named = {(fid, ts) for fid, ts in stored if fid in {fid for fid, _ in landing.stored}}
    assert named == landing.stored
    assert kept == len(stored) == len(landing.stored) + len(opensky)
    by_place = {(source, line): (reason, raw) for source, line, reason, raw in quarantined}
    assert len(by_place) == len(quarantined) == rejected
    for place, reason in landing.rejects.items():
        assert place in by_place, (place, sorted(by_place, key=str))
        assert reason in by_place[place][0], (place, by_place[place][0])
    assert set(by_place) == set(landing.rejects)
    raw = by_place[(f"{DAY}/nonfinite.jsonl", 1)][1]
    assert json.loads(raw, parse_constant=lambda c: pytest.fail(f"{c} is not JSON"))
    assert all("\x00" not in (raw or "") for _, raw in by_place.values())
    row = next(line for line in first.stdout.splitlines() if line.startswith(f"│ {DAY}"))
    cells = [cell.strip() for cell in row.split("│")]
    assert "skipped" in first.stdout and cells[2:4] == [str(files), str(landing.skipped)], row
    before = snapshot(apache_url)
    second = run_ingest(apache_url, landing.root)
    assert second.returncode == 1, second.stdout + second.stderr
    assert snapshot(apache_url) == before


@pytest.mark.apache
def test_the_sensor_evaluates_whatever_the_landing_zone_holds(
    apache_url: str, landing: Landing
) -> None:
    resources = {
        "landing": LandingZone(root=str(landing.root)),
        "flight_store": FlightStore(database_url=apache_url),
    }
    (landing.root / os.fsdecode(b"\xfe\xff-not-a-day")).mkdir()
    with dg.build_sensor_context(resources=resources) as ctx:
        first = landing_zone_sensor(ctx)
    # The linked day has no drop of its own: it waits, where a run would fail for it.
    assert [r.partition_key for r in first.run_requests] == [str(DAY)]
    (landing.folder / "incoming.pb.part").write_bytes(b"still growing")
    with dg.build_sensor_context(cursor=first.cursor, resources=resources) as ctx:
        assert landing_zone_sensor(ctx).run_requests == []  # a partial file is not a drop
