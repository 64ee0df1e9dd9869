"""What every reader shares: the byte stream in chunks, the record size limit, and the error
a stream raises when it stops being readable part-way through."""

from __future__ import annotations

import gzip
import zlib
from collections.abc import Iterator
from typing import Any, BinaryIO

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


class GzipStream:
    """A gzip file decompressed as it is read, that keeps what came before damage.

    `gzip.GzipFile` raises on a truncated or corrupt stream and loses the output of the read
    that met the damage, so a cut `.pb.gz` kept nothing. Here every byte that decompresses
    cleanly is returned first; then the stream ends, and `damage` says why and after how many
    decompressed bytes (the reader has by then handled what came before, exactly as for a
    plain file cut at that point). Concatenated members are one stream, and zero padding
    after the last is ignored, as `gzip` does.
    """

    _STEP = 16 << 10  # compressed bytes fed at a time (a bomb yields at most ~16 MB a step)
    _NEAR = 1  # ... and byte by byte once damage was met, to keep all output before it

    def __init__(self, raw: BinaryIO) -> None:
        self._raw = raw
        self._inflate: Any = None  # zlib's decompressor of the current member, if inside one
        self._pending = b""  # compressed bytes not fed yet
        self._raw_done = False
        self._ended = False
        self._out = bytearray()
        self.delivered = 0  # decompressed bytes returned so far
        self.damage: str | None = None

    def __enter__(self) -> GzipStream:
        return self

    def __exit__(self, *exc: object) -> None:
        self._raw.close()

    def read(self, size: int = -1) -> bytes:
        want = size if size >= 0 else 1 << 62
        while len(self._out) < want and not self._ended:
            self._step()
        data = bytes(self._out[:want])
        del self._out[:want]
        self.delivered += len(data)
        return data

    def _more(self) -> bool:
        """Read more compressed bytes; False at the end of the file."""
        if self._raw_done:
            return False
        try:
            chunk = self._raw.read(self._STEP)
        except OSError as exc:
            self._fail(f"file unreadable: {exc}")
            return False
        self._raw_done = not chunk
        self._pending += chunk
        return bool(chunk)

    def _step(self) -> None:
        if self._inflate is not None and self._inflate.eof:
            self._pending = self._inflate.unused_data + self._pending
            self._inflate = None
        if self._inflate is None:
            self._between_members()
            return
        if not self._pending and not self._more():
            if not self._ended:
                self._fail("gzip stream truncated")
            return
        piece, self._pending = self._pending[: self._STEP], self._pending[self._STEP :]
        saved = self._inflate.copy()
        try:
            self._out += self._inflate.decompress(piece)
        except zlib.error:
            self._inflate = saved
            self._salvage(piece)

    def _between_members(self) -> None:
        while len(self._pending) < 2 and self._more():
            pass
        if self._ended:
            return
        if not self._pending.strip(b"\x00"):
            self._pending = b""
            if not self._more():
                self._ended = True
        elif self._pending[:2] == GZIP_MAGIC:
            self._inflate = zlib.decompressobj(wbits=31)
        else:
            self._fail("bytes after the end of the gzip stream")

    def _salvage(self, piece: bytes) -> None:
        """Feed the piece that failed in small steps, keeping the output before the damage."""
        for start in range(0, len(piece), self._NEAR):
            try:
                self._out += self._inflate.decompress(piece[start : start + self._NEAR])
            except zlib.error as exc:
                self._fail(f"gzip stream corrupt: {exc}")
                return
            if self._inflate.eof:
                self._pending = piece[start + self._NEAR :] + self._pending
                return

    def _fail(self, reason: str) -> None:
        self._ended = True
        at = self.delivered + len(self._out)
        self.damage = f"stream unreadable after decompressed byte {at}: {reason}"
