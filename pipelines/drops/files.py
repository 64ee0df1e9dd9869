"""The landing zone: which files belong to a day, how to open them, which reader decodes them.

Layout: `<root>/<YYYY-MM-DD>/**/<file>`. Files are untrusted: a symlink leading out of the
landing zone, an unreadable or empty file, or an unknown format becomes one quarantine record
with its reason, never an exception that stops the day.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path, PurePath
from typing import BinaryIO, cast

from pipelines import settings
from pipelines.drops.batches import DEFAULT_BATCH_ROWS, DropBatch, frame_from_columns
from pipelines.drops.jsonl import read_jsonl
from pipelines.drops.opensky import read_opensky
from pipelines.drops.protobuf import read_protobuf
from pipelines.drops.stream import GZIP_MAGIC, DropReadError, GzipStream
from pipelines.flights.records import Rejected

Reader = Callable[[BinaryIO, str, int], Iterator[DropBatch]]


@dataclass(frozen=True)
class DropFile:
    """A file in a day's landing folder; `name` is its path relative to the landing root as
    shown (bytes that are not UTF-8 as `\\xNN`); `problem` says why it cannot be read, when
    that was known on discovery (an unreadable folder)."""

    path: Path
    name: str
    size: int
    mtime_ns: int
    problem: str | None = None

    @property
    def fingerprint(self) -> str:
        return f"{self.name}:{self.size}:{self.mtime_ns}"


@dataclass
class DayScan:
    """A day's landing folder: its drops, and what lies there that is not a drop (hidden,
    still being written, or a symlink whose target another path reads), with why."""

    drops: list[DropFile] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)


def day_folder(root: Path, day: date) -> Path:
    return root / day.isoformat()


def why_no_drops(folder: Path) -> str:
    """What a day folder without a drop is, to follow its name in a message."""
    if folder.is_dir():
        return "is empty"
    if folder.is_symlink():
        return "is a symlink that leads to no folder (dangling, or a loop)"
    return "does not exist"


def shown_name(path: str | PurePath) -> str:
    """A path as text that can be printed and stored: undecodable bytes as `\\xNN`."""
    return os.fsencode(path).decode("utf-8", "backslashreplace")


def _owner(real_root: Path, target: Path) -> str | None:
    """Who reads a symlink's target: `"outside"`, the day folder it lies in, or "" for a
    place of the landing zone no day owns (the linking day reads it)."""
    if not target.is_relative_to(real_root) or target == real_root:
        return "outside"
    top = target.relative_to(real_root).parts[0]
    try:
        # Only a day's own spelling names its folder: fromisoformat also reads 20240301.
        if date.fromisoformat(top).isoformat() != top:
            return ""
    except ValueError:
        return ""
    folder = real_root / top
    return top if folder.is_dir() and not folder.is_symlink() else ""


def scan_day(root: Path, day: date) -> DayScan:
    """Every drop under the day's folder, sorted by path, and what was skipped.

    Hidden names (`.name`, folders included) and names ending in an in-progress suffix are
    not drops. A symlink is judged by where it resolves: outside the landing zone it stays a
    drop that `read_drop` refuses; into a day folder, only that day reads it (by its real
    path); elsewhere in the landing zone, this day reads it. A folder that cannot be listed
    is a drop with its problem, never a silent skip."""
    scan = DayScan()
    folder = day_folder(root, day)
    if not folder.is_dir():
        return scan
    real_root = settings.real_path(root)
    suffixes = settings.in_progress_suffixes()
    owner = day.isoformat()
    visited: set[Path] = set()
    if folder.is_symlink() and not _follow(folder, real_root, owner, visited, scan):
        return scan
    followed_links = False  # only links inside the day can lead to a file twice
    pending = [folder]
    while pending:
        current = pending.pop()
        try:
            visited.add(settings.real_path(current))
            entries = sorted(os.scandir(current), key=lambda e: e.name)
        except OSError as exc:
            scan.drops.append(_unreadable(current, root, f"folder cannot be read: {exc.strerror}"))
            continue
        for entry in entries:
            path = Path(entry.path)
            name = shown_name(path.relative_to(root))
            if entry.name.startswith("."):
                scan.skipped.append((name, "hidden"))
                continue
            try:
                is_dir = entry.is_dir()  # follows a symlink
            except OSError:
                is_dir = False
            if not is_dir and entry.name.casefold().endswith(suffixes):
                scan.skipped.append((name, "still being written"))
                continue
            if entry.is_symlink():
                if not _follow(path, real_root, owner, visited, scan):
                    continue
                followed_links = True
            if is_dir:
                pending.append(path)
                continue
            try:
                stat = path.lstat() if entry.is_symlink() else path.stat()
            except OSError as exc:
                scan.drops.append(_unreadable(path, root, f"file cannot be read: {exc.strerror}"))
                continue
            scan.drops.append(DropFile(path, name, stat.st_size, stat.st_mtime_ns))
    scan.drops.sort(key=lambda d: d.path)
    if followed_links:
        _read_each_file_once(scan, real_root)
    return scan


def _read_each_file_once(scan: DayScan, real_root: Path) -> None:
    """Keeps the first of the drops that are one file of the landing zone (reached through
    two links, or a link and a folder it leads into): the day reads each file once."""
    first: dict[Path, str] = {}
    drops = []
    for drop in scan.drops:
        try:
            real = settings.real_path(drop.path, strict=True)
        except OSError:  # refused when read, with its reason
            drops.append(drop)
            continue
        if drop.problem is None and real in first and real.is_relative_to(real_root):
            scan.skipped.append(
                (drop.name, f"the same file as {first[real]}, which this day reads")
            )
            continue
        first.setdefault(real, drop.name)
        drops.append(drop)
    scan.drops = drops


def _follow(path: Path, real_root: Path, day: str, visited: set[Path], scan: DayScan) -> bool:
    """Whether this day reads the symlink `path` (a file to read or a folder to walk)."""
    name = shown_name(path.relative_to(real_root) if path.is_relative_to(real_root) else path)
    try:
        target = settings.real_path(path)
    except OSError as exc:  # a loop: it never reaches a file or folder
        scan.drops.append(DropFile(path, name, 0, 0, f"symlink cannot be followed: {exc.strerror}"))
        return False
    owner = _owner(real_root, target)
    if owner == "outside":
        if target.is_dir():  # one record for the folder, none for what lies beyond it
            scan.drops.append(DropFile(path, name, 0, 0, "symlink points outside the landing zone"))
            return False
        return True  # refused when read, with its reason
    if owner and owner != day:
        scan.skipped.append((name, f"symlink into {owner}, which reads it"))
        return False
    if owner == day or target in visited:
        scan.skipped.append((name, "symlink to a path this day reads anyway"))
        return False
    return True


def _unreadable(path: Path, root: Path, reason: str) -> DropFile:
    return DropFile(path, shown_name(path.relative_to(root)), 0, 0, reason)


def discover_drops(root: Path, day: date) -> list[DropFile]:
    """The drops of a day (see `scan_day`)."""
    return scan_day(root, day).drops


def partition_fingerprint(files: list[DropFile]) -> str:
    """Changes when any file of the day is added, removed or rewritten (sensor cursor)."""
    digest = hashlib.sha256()
    for f in files:
        digest.update(f.fingerprint.encode() + b"\n")
    return digest.hexdigest()[:32]


def _format_of(name: str) -> str | None:
    base = name.rsplit("/", 1)[-1].lower()
    if base.endswith(".gz"):
        base = base[:-3]
    if base.endswith(".pb"):
        return "protobuf"
    if base.endswith(".jsonl"):
        return "jsonl"
    if base.startswith("states_") and (base.endswith(".csv") or base.endswith(".csv.tar")):
        return "opensky"
    return None


READERS: dict[str, Reader] = {
    "protobuf": read_protobuf,
    "jsonl": read_jsonl,
    "opensky": read_opensky,
}


def _file_reject(drop: DropFile, reason: str) -> DropBatch:
    empty = frame_from_columns({"record": [], "raw_timestamp": []})
    return DropBatch(drop.name, empty, [Rejected(drop.name, reason)])


def _open(path: Path) -> BinaryIO | GzipStream:
    raw = path.open("rb")
    if raw.peek(2)[:2] == GZIP_MAGIC:
        return GzipStream(raw)
    return raw


def read_drop(
    drop: DropFile, root: Path, batch_rows: int = DEFAULT_BATCH_ROWS
) -> Iterator[DropBatch]:
    """Decode one file into batches; whatever cannot be read is yielded as rejects."""
    if drop.problem:
        yield _file_reject(drop, drop.problem)
        return
    fmt = _format_of(drop.name)
    if fmt is None:
        yield _file_reject(
            drop, "unknown drop format (expected *.pb, *.jsonl or states_*.csv, optionally gzipped)"
        )
        return
    try:
        resolved = settings.real_path(drop.path, strict=True)
    except OSError:
        yield _file_reject(drop, "file vanished or is a dangling symlink")
        return
    if not resolved.is_relative_to(settings.real_path(root)):
        yield _file_reject(drop, "symlink points outside the landing zone")
        return
    if not resolved.is_file():
        yield _file_reject(drop, "not a regular file (pipe, socket, device or folder)")
        return
    if resolved.stat().st_size == 0:
        yield _file_reject(drop, "empty file")
        return
    reader = READERS[fmt]
    try:
        stream = _open(resolved)
    except OSError as exc:
        yield _file_reject(drop, f"file cannot be opened: {exc.strerror or exc}")
        return
    with stream:
        try:
            yield from reader(cast(BinaryIO, stream), drop.name, batch_rows)
        except DropReadError as exc:
            yield _file_reject(drop, str(exc))
            return
    if isinstance(stream, GzipStream):
        if stream.damage:
            empty = frame_from_columns({"record": [], "raw_timestamp": []})
            reject = Rejected(drop.name, stream.damage, None, None, stream.delivered)
            yield DropBatch(drop.name, empty, [reject])
        elif not stream.delivered:
            yield _file_reject(drop, "empty file (a gzip of nothing)")
