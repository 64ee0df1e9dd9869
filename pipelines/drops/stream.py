"""What every reader shares: the byte stream in chunks, the record size limit, and the error
a stream raises when it stops being readable part-way through."""

from __future__ import annotations

import gzip
import zlib
from collections.abc import Iterator
from typing import BinaryIO

GZIP_MAGIC = b"\x1f\x8b"
# A single record larger than this is refused (real ADS-B records are well under 1 KB).
MAX_RECORD_BYTES = 1 << 20


class DropReadError(Exception):
    """A stream stopped being readable (corrupt gzip, I/O error) part-way through."""


def read_chunks(stream: BinaryIO, chunk_bytes: int = 8 << 20) -> Iterator[bytes]:
    """The stream in chunks; a corrupt gzip or I/O error becomes a DropReadError."""
    while True:
        try:
            chunk = stream.read(chunk_bytes)
        except (OSError, EOFError, zlib.error, gzip.BadGzipFile) as exc:
            raise DropReadError(f"stream unreadable after this point: {exc}") from exc
        if not chunk:
            return
        yield chunk
