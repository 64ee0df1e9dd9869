"""Generated hostile drops, every format, with and without gzip, on a real database.

Each example is a day of valid records in one file, damaged by arbitrary byte mutations
(overwrites, insertions, deletions, a cut) of its content or of its gzip stream. Whatever
the bytes, the day must complete, reconcile (read = stored + quarantined + duplicates),
store every record that came through undamaged, and leave the landing-zone sensor working.

"Undamaged" is decided by a reference independent of the readers: the lines of the bytes
that zlib (fed byte by byte) yields, or the frames a plain varint walk finds in them.
The default run is a few examples per format; `FLIGHTS_FUZZ_SCALE` multiplies them for a
release check (see the README).
"""

from __future__ import annotations

import gzip
import itertools
import json
import os
import zlib
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import dagster as dg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipelines.assets.landing_sensor import landing_zone_sensor
from pipelines.assets.resources import FlightStore, LandingZone
from pipelines.drops.opensky import HEADER
from pipelines.drops.stream import MAX_RECORD_BYTES
from pipelines.ingest import ingest_partition
from pipelines.proto.flight_pb2 import FlightData
from pipelines.warehouse.connection import connect
from tests.test_wire_differential import varint

SCALE = int(os.environ.get("FLIGHTS_FUZZ_SCALE", "1"))
FIRST_DAY = date(2023, 1, 1)
_days = itertools.count()


@dataclass(frozen=True)
class Record:
    time: datetime
    latitude: float
    raw: bytes  # the record as written: a frame, or a line without its newline


def records(example: int, n: int, fmt: str, day: date) -> list[Record]:
    start = datetime(day.year, day.month, day.day, 6, tzinfo=UTC)
    made = []
    for i in range(n):
        time = start + timedelta(seconds=7 * i)
        latitude = round(10 + i * 0.01 + example * 1e-6, 6)
        stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ")
        if fmt == "protobuf":
            payload = FlightData(
                flight_id=f"z{example:05d}{i % 3}",
                latitude=latitude,
                longitude=8.5,
                altitude=30000,
                airspeed=400,
                timestamp=stamp,
                airline="Fuzz Air",
            ).SerializeToString()
            raw = varint(len(payload)) + payload
        elif fmt == "jsonl":
            fields = {"flight_id": f"z{example:05d}{i % 3}", "latitude": latitude}
            fields |= {"longitude": 8.5, "altitude": 30000, "timestamp": stamp}
            raw = json.dumps(fields).encode()
        else:
            seconds = int(time.timestamp())
            icao = f"{(example * 7 + i % 3) % 0xFFFFFF:06x}"
            raw = (
                f"{seconds},{icao},{latitude},8.5,200.0,90.0,0.0,FZ{i % 3} ,False,False,"
                f"False,1000,9000.0,9100.0,{seconds}.0,{seconds}.0"
            ).encode()
        made.append(Record(time, latitude, raw))
    return made


def content(fmt: str, made: list[Record]) -> bytes:
    if fmt == "protobuf":
        return b"".join(r.raw for r in made)
    lines = [r.raw for r in made]
    if fmt == "opensky":
        lines.insert(0, ",".join(HEADER).encode())
    return b"".join(line + b"\n" for line in lines)


mutation = st.tuples(
    st.sampled_from(["overwrite", "insert", "delete"]),
    st.integers(0, 1 << 16),
    st.binary(min_size=1, max_size=8),
)


def mutate(data: bytes, mutations: list[tuple[str, int, bytes]]) -> bytes:
    out = bytearray(data)
    for kind, where, junk in mutations:
        at = where % (len(out) + 1)
        if kind == "overwrite":
            out[at : at + len(junk)] = junk
        elif kind == "insert":
            out[at:at] = junk
        else:
            del out[at : at + len(junk)]
    return bytes(out)


def zlib_reference(compressed: bytes) -> tuple[bytes, bool]:
    """What zlib yields fed one byte at a time, stopping at damage; and whether it ended
    cleanly (then the whole decompressed text is read, with its last line)."""
    inflate = zlib.decompressobj(wbits=31)
    out = bytearray()
    for i in range(len(compressed)):
        try:
            out += inflate.decompress(compressed[i : i + 1])
        except zlib.error:
            return bytes(out), False
        if inflate.eof:
            return bytes(out), not inflate.unused_data + compressed[i + 1 :]
    return bytes(out), False


def intact(fmt: str, made: list[Record], data: bytes, complete: bool) -> list[Record]:
    """The records found whole in `data`: as lines, or as frames of a varint walk that
    stops where the framing is lost."""
    if fmt == "protobuf":
        frames, pos = set(), 0
        while pos < len(data):
            size = shift = 0
            start = pos
            while pos < len(data) and data[pos] & 0x80 and pos - start < 9:
                size |= (data[pos] & 0x7F) << shift
                shift, pos = shift + 7, pos + 1
            if pos >= len(data) or data[pos] & 0x80:
                break
            size |= data[pos] << shift
            pos += 1
            if size > MAX_RECORD_BYTES or pos + size > len(data):
                break
            frames.add(data[start : pos + size])
            pos += size
        return [r for r in made if r.raw in frames]
    lines = data.split(b"\n")
    if not complete:
        lines.pop()  # cut inside its last line, or empty after the last newline
    if fmt == "opensky" and (not lines or lines[0] != ",".join(HEADER).encode()):
        return []  # without the header nothing is trusted
    return [r for r in made if r.raw in set(lines)]


NAMES = {"protobuf": (b"z", b".pb"), "jsonl": (b"z", b".jsonl"), "opensky": (b"states_", b".csv")}


def check_day(url: str, root: Path, fmt: str, gz: bool, draw: st.DataObject) -> None:
    example = next(_days)
    day = FIRST_DAY + timedelta(days=example)
    made = records(example, draw.draw(st.integers(1, 25), label="records"), fmt, day)
    plain = mutate(content(fmt, made), draw.draw(st.lists(mutation, max_size=4), label="edits"))
    data, complete = plain, True
    if gz:
        data = gzip.compress(plain, mtime=0)
        damage = draw.draw(st.lists(mutation, max_size=2), label="gzip edits")
        # Every draw's bounds are constant: the bytes vary with the example's day (a module
        # counter), and a bound taken from their length would differ when Hypothesis
        # replays a case, which it reports as a flaky strategy.
        cut = draw.draw(st.one_of(st.none(), st.integers(0, 1 << 16)), label="cut")
        data = mutate(data, damage)
        data = data if cut is None else data[: cut % (len(data) + 1)]
        if damage or cut is not None:
            plain, complete = zlib_reference(data)
    stem = draw.draw(st.binary(max_size=6).filter(lambda b: b"/" not in b and b"\0" not in b))
    folder = root / day.isoformat()
    folder.mkdir()
    prefix, suffix = NAMES[fmt]
    (folder / os.fsdecode(prefix + stem + suffix + (b".gz" if gz else b""))).write_bytes(data)

    # Damage may reject most of a day: the day is published whatever its reject rate, so
    # that every intact record can be looked for among the readable rows.
    batch_rows = draw.draw(st.sampled_from([10, 1000]))
    report = ingest_partition(url, day, root, batch_rows=batch_rows, max_reject_rate=1.0)

    assert report.reconciles, report
    with connect(url) as conn:
        stored = set(
            conn.execute(
                "SELECT timestamp, latitude FROM flight_data WHERE timestamp >= %s "
                "AND timestamp < %s",
                (day, day + timedelta(days=1)),
            ).fetchall()
        )
        superseded = conn.execute(
            "SELECT count(*) FROM quarantine WHERE partition_day = %s AND "
            "(reason LIKE 'conflicting duplicate%%' OR reason LIKE 'earlier record%%')",
            (day,),
        ).fetchone()
    for record in intact(fmt, made, plain, complete):
        # Present, unless a damaged record with the same key came later and replaced it.
        assert (record.time, record.latitude) in stored or (superseded and superseded[0]), record
    resources = {
        "landing": LandingZone(root=str(root)),
        "flight_store": FlightStore(database_url=url),
    }
    with dg.build_sensor_context(resources=resources) as ctx:
        landing_zone_sensor(ctx)


def fuzz(examples: int) -> settings:
    return settings(
        max_examples=examples * SCALE,
        deadline=None,
        suppress_health_check=[
            HealthCheck.too_slow,
            HealthCheck.function_scoped_fixture,
            HealthCheck.data_too_large,
        ],
    )


@pytest.fixture(scope="module")
def landing_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("landing")


@pytest.mark.apache
@pytest.mark.parametrize("gz", [False, True], ids=["plain", "gzip"])
@pytest.mark.parametrize("fmt", ["protobuf", "jsonl", "opensky"])
@fuzz(6)
@given(data=st.data())
def test_damaged_drops_cost_only_the_damaged_records(
    apache_url: str, landing_root: Path, fmt: str, gz: bool, data: st.DataObject
) -> None:
    check_day(apache_url, landing_root, fmt, gz, data)
