"""Landing folders of partitions past the raw retention: kept, archived or deleted.

Only a folder `<root>/<YYYY-MM-DD>` whose partition the ingest loaded (it has a
`partition_loads` row) and in which no file changed since that load is touched: anything else
may hold points the store does not have. A day folder that is a symlink is a link, not the
day's files: only the link is removed (what it leads to is pruned as its own day, or stays),
and links inside a folder are archived as links, never followed out of the landing zone.
"""

from __future__ import annotations

import filecmp
import os
import shutil
import stat
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Literal

import psycopg

from pipelines.settings import LandingPolicy
from pipelines.warehouse.sqlfiles import load_sql


@dataclass(frozen=True)
class LandingAction:
    """One landing folder and what happened (or, in a dry run, would happen) to it."""

    day: date
    path: Path
    action: Literal["archived", "deleted", "link removed", "kept: changed since its load"]
    bytes: int


def prune_landing(
    conn: psycopg.Connection,
    root: Path,
    before: date,
    policy: LandingPolicy,
    *,
    archive_dir: Path,
    dry_run: bool = False,
) -> list[LandingAction]:
    """Archive or delete the landing folders of partitions loaded before `before`."""
    if policy == "keep":
        return []
    actions = []
    for day, loaded_at in conn.execute(load_sql("retention/loaded_partitions"), {"before": before}):
        folder = root / day.isoformat()
        if folder.is_symlink():
            if not dry_run:
                folder.unlink()
            actions.append(LandingAction(day, folder, "link removed", 0))
            continue
        if not folder.is_dir():
            continue
        files = _file_stats(folder)
        size = sum(f.st_size for f in files)
        newest = max((f.st_mtime for f in files), default=0.0)
        if datetime.fromtimestamp(newest, UTC) > loaded_at:
            actions.append(LandingAction(day, folder, "kept: changed since its load", size))
            continue
        if policy == "archive":
            if not dry_run:
                _archive(folder, archive_dir / folder.name)
            actions.append(LandingAction(day, folder, "archived", size))
        else:
            if not dry_run:
                shutil.rmtree(folder)
            actions.append(LandingAction(day, folder, "deleted", size))
    return actions


def _file_stats(folder: Path) -> list[os.stat_result]:
    """The folder's files as the ingest reads them (links followed; one that leads nowhere,
    or a file gone meanwhile, has none)."""
    stats = []
    for path in folder.rglob("*"):
        try:
            if path.is_file():
                stats.append(path.stat())
        except OSError:
            continue
    return stats


def _archive(folder: Path, target: Path) -> None:
    """Move a folder into the archive. A day archived before gets the new files merged in
    when nothing of it would be replaced; otherwise (a file of the same name with other
    bytes, something other than a folder at the day's name) the folder goes beside it, as
    `<day>.2`, `<day>.3`, ...: nothing archived is ever overwritten, and the cleaner never
    fails on what an archive already holds."""
    target.parent.mkdir(parents=True, exist_ok=True)
    if not os.path.lexists(target):
        _move(folder, target)
    elif _merges_cleanly(folder, target):
        shutil.copytree(folder, target, symlinks=True, dirs_exist_ok=True)
        shutil.rmtree(folder)
    else:
        _move(folder, _free_name(target))


def _move(folder: Path, target: Path) -> None:
    """`shutil.move`, whose copy to another file system failed on a FIFO, socket or device
    in the day (and left half a copy behind): such an entry is made again there."""
    shutil.move(folder, target, copy_function=_copy_entry)


def _copy_entry(source: str, destination: str) -> None:
    """A regular file's bytes and times; any other entry made anew with its type and mode."""
    status = os.lstat(source)
    if stat.S_ISREG(status.st_mode):
        shutil.copy2(source, destination)
        return
    os.mknod(destination, status.st_mode, status.st_rdev)
    shutil.copystat(source, destination, follow_symlinks=False)


def _merges_cleanly(folder: Path, target: Path) -> bool:
    """Whether copying `folder` over `target` adds entries and replaces none: each entry is
    absent there or the same (a folder for a folder, a link to the same place, equal bytes),
    and is a folder, a link or a regular file (what a merge can copy)."""
    if target.is_symlink() or not target.is_dir():
        return False
    for path in [folder, *folder.rglob("*")]:
        if not (path.is_symlink() or path.is_dir() or path.is_file()):
            return False  # a FIFO, socket or device: never merged, the day goes beside
        there = target / path.relative_to(folder)
        if not os.path.lexists(there):
            continue
        if path.is_symlink():
            same = there.is_symlink() and os.readlink(there) == os.readlink(path)
        elif path.is_dir():
            same = there.is_dir() and not there.is_symlink()
        else:
            same = (
                there.is_file()
                and not there.is_symlink()
                and filecmp.cmp(path, there, shallow=False)
            )
        if not same:
            return False
    return True


def _free_name(target: Path) -> Path:
    """The first of `<day>.2`, `<day>.3`, ... that the archive does not hold."""
    n = 2
    while os.path.lexists(target.with_name(f"{target.name}.{n}")):
        n += 1
    return target.with_name(f"{target.name}.{n}")
