"""The landing zone: which files belong to a day, how to open them, which reader decodes them.

Layout: `<root>/<YYYY-MM-DD>/**/<file>`. Files are untrusted: a symlink leading out of the
landing zone, an unreadable or empty file, or an unknown format becomes one quarantine record
with its reason, never an exception that stops the day.
"""

from __future__ import annotations

import gzip
import hashlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import BinaryIO

from pipelines.drops.batches import DEFAULT_BATCH_ROWS, DropBatch, frame_from_columns
from pipelines.drops.jsonl import read_jsonl
from pipelines.drops.opensky import read_opensky
from pipelines.drops.protobuf import read_protobuf
from pipelines.drops.stream import GZIP_MAGIC, DropReadError
from pipelines.flights.records import Rejected

Reader = Callable[[BinaryIO, str, int], Iterator[DropBatch]]


@dataclass(frozen=True)
class DropFile:
    """A file in a day's landing folder; `name` is its path relative to the landing root."""

    path: Path
    name: str
    size: int
    mtime_ns: int

    @property
    def fingerprint(self) -> str:
        return f"{self.name}:{self.size}:{self.mtime_ns}"


def day_folder(root: Path, day: date) -> Path:
    return root / day.isoformat()


def discover_drops(root: Path, day: date) -> list[DropFile]:
    """Every file under the day's folder (symlinks included, checked when read), sorted."""
    folder = day_folder(root, day)
    if not folder.is_dir():
        return []
    found = []
    for path in sorted(p for p in folder.rglob("*") if not p.is_dir() or p.is_symlink()):
        try:
            stat = path.lstat() if path.is_symlink() else path.stat()
        except OSError:
            continue
        found.append(
            DropFile(path, path.relative_to(root).as_posix(), stat.st_size, stat.st_mtime_ns)
        )
    return found


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


def _open(path: Path) -> BinaryIO:
    raw = path.open("rb")
    if raw.peek(2)[:2] == GZIP_MAGIC:
        return gzip.GzipFile(fileobj=raw, mode="rb")  # type: ignore[return-value]
    return raw


def read_drop(
    drop: DropFile, root: Path, batch_rows: int = DEFAULT_BATCH_ROWS
) -> Iterator[DropBatch]:
    """Decode one file into batches; whatever cannot be read is yielded as rejects."""
    fmt = _format_of(drop.name)
    if fmt is None:
        yield _file_reject(
            drop, "unknown drop format (expected *.pb, *.jsonl or states_*.csv, optionally gzipped)"
        )
        return
    try:
        resolved = drop.path.resolve(strict=True)
    except OSError:
        yield _file_reject(drop, "file vanished or is a dangling symlink")
        return
    if not resolved.is_relative_to(root.resolve()):
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
            yield from reader(stream, drop.name, batch_rows)
        except DropReadError as exc:
            yield DropBatch(
                drop.name,
                frame_from_columns({"record": [], "raw_timestamp": []}),
                [Rejected(drop.name, str(exc))],
            )
