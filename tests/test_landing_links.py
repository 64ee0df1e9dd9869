"""Landing zones whose symlinks lead anywhere: to files and folders, other days, the root,
out of the zone, nowhere, themselves or each other (loops of any length).

Generated trees of folders, drops and links are ingested day by day, evaluated by the
landing-zone sensor and pruned by the cleaner under each policy. Whatever the links, every
day completes and reconciles, every drop in a day's own folders is stored, the sensor
evaluates, and the cleaner neither fails nor touches anything but the pruned days: their own
files are archived or deleted exactly, and what lies out of the zone or in its other folders
stays as it was.
"""

from __future__ import annotations

import itertools
import os
import shutil
import stat
import tempfile
import time
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path

import dagster as dg
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from pipelines.assets.landing_sensor import landing_zone_sensor
from pipelines.assets.resources import FlightStore, LandingZone
from pipelines.drops.files import scan_day
from pipelines.ingest import NoDrops, ingest_partition
from pipelines.retention.landing import prune_landing
from pipelines.warehouse.connection import connect
from tests.drops_factory import message, write_pb

FIRST_DAY = date(2001, 1, 1)
DAYS_PER_TREE = 3
_trees = itertools.count()

# Where a link leads; an index picks among the candidates of that kind (modulo their number,
# so that every draw has constant bounds whatever the tree).
TARGETS = ("file", "folder", "link", "outside file", "outside folder", "missing")
target = st.tuples(st.sampled_from(TARGETS), st.integers(0, 63), st.booleans())
place = st.integers(0, 63)  # which folder of the zone holds a file or a link


@dataclass
class Tree:
    root: Path
    outside: Path
    days: list[date]
    folders: list[Path] = field(default_factory=list)  # real folders in the zone
    own_files: dict[date, list[Path]] = field(default_factory=dict)  # in a day's own folders
    files: list[Path] = field(default_factory=list)
    links: list[Path] = field(default_factory=list)


def build(base: Path, draw: st.DataObject) -> Tree:
    first = FIRST_DAY + timedelta(days=DAYS_PER_TREE * next(_trees))
    tree = Tree(base / "landing", base / "outside", [first + timedelta(d) for d in range(3)])
    write_pb(tree.outside / "secret.pb", [message(0, "secret")])
    (tree.outside / "folder").mkdir()
    tree.folders.append(tree.root / "shared")
    tree.folders[-1].mkdir(parents=True)
    linked_days = []
    for day in tree.days:
        tree.own_files[day] = []
        if draw.draw(st.booleans(), label="day is a link"):
            linked_days.append(tree.root / day.isoformat())
            continue
        folder = tree.root / day.isoformat()
        tree.folders.append(folder)
        if draw.draw(st.booleans(), label="day has a subfolder"):
            tree.folders.append(folder / "sub")
        tree.folders[-1].mkdir(parents=True)
    files = draw.draw(st.lists(place, max_size=6), label="files")
    for n, where in enumerate(files):
        folder = tree.folders[where % len(tree.folders)]
        owner = next(
            (d for d in tree.days if tree.root / d.isoformat() in (folder, folder.parent)), None
        )
        stamp = f"{owner or tree.days[0]}T10:00:{n:02d}Z"
        path = write_pb(folder / f"drop{n}.pb", [message(n, f"t{n}", timestamp=stamp)])
        tree.files.append(path)
        if owner:
            tree.own_files[owner].append(path)
    links = draw.draw(st.lists(st.tuples(place, target), max_size=6), label="links")
    tree.links = linked_days + [
        tree.folders[where % len(tree.folders)] / f"link{n}.pb"
        for n, (where, _) in enumerate(links)
    ]
    targets = [draw.draw(target, label="day link leads to") for day_link in linked_days]
    for link, (kind, index, relative) in zip(
        tree.links, targets + [t for _, t in links], strict=True
    ):
        candidates = {
            "file": tree.files or [tree.outside / "secret.pb"],
            "folder": [tree.root, *tree.folders],
            "link": tree.links,
            "outside file": [tree.outside / "secret.pb"],
            "outside folder": [tree.outside / "folder"],
            "missing": [tree.root / "missing" / "gone.pb"],
        }[kind]
        to = candidates[index % len(candidates)]
        link.symlink_to(os.path.relpath(to, link.parent) if relative else to)
    return tree


def contents(paths: list[Path]) -> dict[Path, bytes]:
    return {p: p.read_bytes() for p in paths}


def check_tree(url: str, base: Path, draw: st.DataObject) -> None:
    tree = build(base, draw)
    loaded = []
    for day in tree.days:
        drops = [d for d in scan_day(tree.root, day).drops if d.problem is None]
        reached = [Path(os.path.realpath(d.path)) for d in drops if d.path.exists()]
        inside = [p for p in reached if p.is_relative_to(os.path.realpath(tree.root))]
        assert len(set(inside)) == len(inside), drops  # each file of the zone read once
        try:
            report = ingest_partition(url, day, tree.root, max_reject_rate=1.0)
        except NoDrops:
            assert not tree.own_files[day]
            continue
        loaded.append(day)
        assert report.reconciles, report
        with connect(url) as conn:
            stored = {
                row[0]
                for row in conn.execute(
                    "SELECT DISTINCT flight_id FROM flight_data WHERE timestamp >= %s "
                    "AND timestamp < %s",
                    (day, day + timedelta(days=1)),
                )
            }
        assert {f"t{p.stem.removeprefix('drop')}" for p in tree.own_files[day]} <= stored

    resources = {
        "landing": LandingZone(root=str(tree.root)),
        "flight_store": FlightStore(database_url=url),
    }
    with dg.build_sensor_context(resources=resources) as ctx:
        landing_zone_sensor(ctx)

    # The cleaner prunes only folders whose files are older than their load. Each policy
    # prunes its own copy of the zone (links copied as links); the zone itself, and what
    # lies out of it, must stay as they are.
    an_hour_ago = time.time() - 3600
    for path in [*tree.files, tree.outside / "secret.pb"]:
        os.utime(path, (an_hour_ago, an_hour_ago))
    before = contents([*tree.files, tree.outside / "secret.pb"])
    pruned_days = [d for d in loaded if not (tree.root / d.isoformat()).is_symlink()]
    archived_before = [d for d in tree.days if draw.draw(st.booleans(), label="archived before")]
    for policy in ("archive", "delete"):
        zone, archive = base / f"landing-{policy}", base / f"archive-{policy}"
        for day in archived_before:  # an earlier archive of the day: merged into
            write_pb(archive / day.isoformat() / "earlier.pb", [message(0, "earlier")])
        shutil.copytree(tree.root, zone, symlinks=True)
        with connect(url) as conn:
            prune_landing(
                conn, zone, tree.days[-1] + timedelta(days=1), policy, archive_dir=archive
            )
        for path in tree.files:
            relative = path.relative_to(tree.root)
            if relative.parts[0] in {d.isoformat() for d in pruned_days}:
                assert not (zone / relative).exists(), relative
                kept = archive / relative
                assert (
                    kept.read_bytes() == before[path] if policy == "archive" else not kept.exists()
                )
            else:
                assert (zone / relative).read_bytes() == before[path], relative
        for day in loaded:
            assert not os.path.lexists(zone / day.isoformat())
        for day in archived_before:
            assert (archive / day.isoformat() / "earlier.pb").exists()
    assert contents([*tree.files, tree.outside / "secret.pb"]) == before


@pytest.mark.apache
@settings(
    max_examples=12,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data())
def test_links_anywhere_cost_no_day_and_the_cleaner_prunes_only_the_days_own_files(
    apache_url: str, data: st.DataObject
) -> None:
    with tempfile.TemporaryDirectory() as base:
        check_tree(apache_url, Path(base), data)


# What the archive may already hold at a day's name when the cleaner archives that day.
EARLIER = ("nothing", "other files", "the same file", "other bytes", "a file", "a link")


def _snapshot(archive: Path) -> dict[Path, bytes | str]:
    """Every entry under the archive: a file's bytes, a link's target."""
    held: dict[Path, bytes | str] = {}
    for path in archive.rglob("*"):
        if path.is_symlink():
            held[path] = os.readlink(path)
        elif path.is_file():
            held[path] = path.read_bytes()
    return held


@pytest.mark.apache
@settings(
    max_examples=10, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    earlier=st.sampled_from(EARLIER),
    taken=st.integers(0, 2),
    pipe=st.booleans(),
    other_file_system=st.booleans(),
)
@example(earlier="nothing", taken=0, pipe=True, other_file_system=True)
@example(earlier="a file", taken=1, pipe=True, other_file_system=True)
def test_archiving_a_day_keeps_everything_the_archive_held_and_fails_on_nothing(
    apache_url: str, earlier: str, taken: int, pipe: bool, other_file_system: bool
) -> None:
    """A day archived again is merged into its earlier archive only when nothing would be
    replaced; otherwise it goes beside it (`<day>.N`). Every file the day held is archived
    with its bytes, and every entry the archive held stays as it was. An archive on another
    file system (memory-backed /dev/shm, where the machine has it) is reached by copying:
    a pipe in the day failed that copy and left half of it behind."""
    shared_memory = Path("/dev/shm")
    elsewhere = other_file_system and shared_memory.is_dir() and os.access(shared_memory, os.W_OK)
    with (
        tempfile.TemporaryDirectory() as scratch,
        tempfile.TemporaryDirectory(dir=shared_memory if elsewhere else None) as archive_base,
    ):
        base = Path(scratch)
        day = FIRST_DAY - timedelta(days=30)
        folder = base / "landing" / day.isoformat()
        write_pb(folder / "day.pb", [message(i, "a1") for i in range(3)])
        if pipe:
            os.mkfifo(folder / "pipe.pb")  # a quarantine row when read, moved when archived
        ingest_partition(apache_url, day, base / "landing", max_reject_rate=1.0)  # pipe: 1 of 4
        an_hour_ago = time.time() - 3600
        os.utime(folder / "day.pb", (an_hour_ago, an_hour_ago))
        day_bytes = (folder / "day.pb").read_bytes()

        archive = Path(archive_base) / "archive"
        at = archive / day.isoformat()
        (base / "elsewhere").mkdir()
        if earlier in ("other files", "the same file", "other bytes"):
            write_pb(at / "older.pb", [message(9, "z9")])
        if earlier == "the same file":
            (at / "day.pb").write_bytes(day_bytes)
        elif earlier == "other bytes":
            (at / "day.pb").write_bytes(day_bytes + b"\0")
        elif earlier == "a file":
            at.parent.mkdir(parents=True)
            at.write_bytes(b"not a folder")
        elif earlier == "a link":
            at.parent.mkdir(parents=True)
            at.symlink_to(base / "elsewhere")
        for n in range(2, 2 + taken):
            archive.mkdir(exist_ok=True)
            (archive / f"{day.isoformat()}.{n}").write_bytes(b"taken")
        held = _snapshot(archive)

        with connect(apache_url) as conn:
            actions = prune_landing(
                conn, base / "landing", day + timedelta(days=1), "archive", archive_dir=archive
            )
        assert [a.action for a in actions] == ["archived"]
        assert not os.path.lexists(folder)
        assert all(_snapshot(archive).get(path) == content for path, content in held.items())
        homes = [at, *(archive / f"{day.isoformat()}.{n}" for n in range(2, 5))]
        assert any(
            (home / "day.pb").is_file() and (home / "day.pb").read_bytes() == day_bytes
            for home in homes
            if home.is_dir() and not home.is_symlink()
        )
        if pipe:
            assert any(
                stat.S_ISFIFO(os.lstat(home / "pipe.pb").st_mode)
                for home in homes
                if home.is_dir() and os.path.lexists(home / "pipe.pb")
            )
        assert not any((base / "elsewhere").iterdir())
