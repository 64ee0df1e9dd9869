"""OpenSky Network state vectors: `states_*.csv[.gz]`, and the `states_*.csv.tar` archives
OpenSky publishes (each holding a gzipped CSV beside its README and licence).

One row is the state of one aircraft at one instant (`time`), in OpenSky's units. Rows become
batch rows in the data model's units (docs/opensky.md):
- `timestamp` = `lastposupdate`, when the position was received (epoch seconds; `time`
  where it is empty), `raw_timestamp` its text. A state vector repeats the last position it
  knows while `time` advances: a row whose position time is not after the aircraft's
  previous one is a repeat, which the ingest counts as a duplicate (`flights/reports.py`);
- `altitude` = `baroaltitude` in whole feet, `airspeed` = `velocity` (ground speed) in whole
  knots, `vertical_rate` = `vertrate` in whole ft/min, `track` = `heading` (degrees);
- `on_ground`, `squawk` (four digits), `icao24` (lower case) and `callsign` (padding
  stripped), the callsign also as `flight_number`; `flight_id` is left empty: the flight
  identifier (`flight_ids`) fills it during ingest.
The other fields are the state at `time` of the first row carrying the position. An empty
field is null. `geoaltitude`, `alert`, `spi` and `lastcontact` are not stored, and are not
parsed; `time` is checked (a row needs one) but not stored.

A row is rejected here, with its line number and text, when it has the wrong number of fields,
a number or flag that does not parse, no `time` (or one outside 2000 to 2099), a
`lastposupdate` that is given but is no such time, no `icao24` (or one that is not six hex
digits) or no position. A first line that is not OpenSky's header rejects the
file. Blocks of whole lines are parsed by Arrow's CSV reader with declared types; only a block
with an unparseable value is parsed again as text to find the bad rows.
"""

from __future__ import annotations

import re
import tarfile
import zlib
from collections.abc import Iterator
from pathlib import PurePosixPath
from typing import BinaryIO, cast

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from pipelines.drops.batches import DropBatch, epoch_nanoseconds, frame_from_columns
from pipelines.drops.stream import GZIP_MAGIC, DropReadError, GzipStream, read_chunks
from pipelines.flights.records import METADATA_COLUMNS, Rejected

HEADER = (
    "time",
    "icao24",
    "lat",
    "lon",
    "velocity",
    "heading",
    "vertrate",
    "callsign",
    "onground",
    "alert",
    "spi",
    "squawk",
    "baroaltitude",
    "geoaltitude",
    "lastposupdate",
    "lastcontact",
)

# Exact by definition: 1 ft = 0.3048 m, 1 kt = 1852 m per hour.
FEET_PER_METRE = 1 / 0.3048
KNOTS_PER_METRE_PER_SECOND = 3600 / 1852
FEET_PER_MINUTE_PER_METRE_PER_SECOND = 60 / 0.3048
# Accepted `time`s: from 2000-01-01 UTC (flight ids count seconds from it) to 2100.
EARLIEST_TIME = 946_684_800
LATEST_TIME = 4_102_444_800

_FLOATS = ("lat", "lon", "velocity", "heading", "vertrate", "baroaltitude")
_TEXTS = ("time", "lastposupdate", "icao24", "callsign", "squawk")
_READ = (*_TEXTS, *_FLOATS, "onground")
_TYPES = {
    **{name: pa.float64() for name in _FLOATS},
    **{name: pa.string() for name in _TEXTS},
    "onground": pa.bool_(),
}
_TRUE = ["True", "true", "TRUE", "1"]
_FALSE = ["False", "false", "FALSE", "0"]
_PREVIEW_CHARS = 1024
_MAX_HEADER_BYTES = 64 << 10
_MAX_LINE_BYTES = 32 << 20
_DOCUMENT_SUFFIXES = (".txt", ".md", ".pdf")


# -- file and archive ----------------------------------------------------------------------
def read_opensky(stream: BinaryIO, source: str, batch_rows: int) -> Iterator[DropBatch]:
    """Batches of at most `batch_rows` rows from a states CSV or a `.csv.tar` archive."""
    name = source.lower().removesuffix(".gz")
    if name.endswith(".tar"):
        yield from _read_archive(stream, source, batch_rows)
    else:
        yield from _read_csv(stream, source, batch_rows)


def _read_archive(stream: BinaryIO, source: str, batch_rows: int) -> Iterator[DropBatch]:
    """Every CSV member of the archive, in archive order; documents beside them are skipped,
    any other member is rejected as one record."""
    found = False
    try:
        with tarfile.open(fileobj=stream, mode="r|*") as archive:
            for member in archive:
                if not member.isfile():
                    continue
                base = PurePosixPath(member.name).name.lower()
                member_source = f"{source}/{member.name}"
                if base.endswith(_DOCUMENT_SUFFIXES):
                    continue
                if not (base.endswith(".csv") or base.endswith(".csv.gz")):
                    yield _file_reject(member_source, "archive member is not a states CSV")
                    continue
                found = True
                member_file = archive.extractfile(member)
                assert member_file is not None
                if member_file.peek(2)[:2] != GZIP_MAGIC:  # type: ignore[attr-defined]
                    yield from _read_csv(cast(BinaryIO, member_file), member_source, batch_rows)
                    continue
                content = GzipStream(cast(BinaryIO, member_file))
                yield from _read_csv(cast(BinaryIO, content), member_source, batch_rows)
                if content.damage:
                    yield _file_reject(member_source, content.damage)
    except (tarfile.TarError, OSError, EOFError, zlib.error) as exc:
        raise DropReadError(f"archive unreadable after this point: {exc}") from exc
    if not found:
        yield _file_reject(source, "archive holds no states CSV")


def _file_reject(source: str, reason: str) -> DropBatch:
    empty = frame_from_columns({"record": [], "raw_timestamp": []})
    return DropBatch(source, empty, [Rejected(source, reason)])


def _header(first_line: bytes) -> tuple[list[str] | None, str | None]:
    """The column names of the file, or why they are not OpenSky's."""
    text = first_line.removeprefix(b"\xef\xbb\xbf").decode("utf-8", "replace").strip()
    names = [n.strip() for n in text.split(",")]
    missing = [n for n in HEADER if n not in names]
    if missing or len(set(names)) != len(names):
        shown = text if len(text) <= 200 else text[:200] + "..."
        return None, (
            f"not an OpenSky state-vector CSV: header {shown!r} lacks "
            f"{', '.join(missing) or 'unique names'} (expected {','.join(HEADER)})"
        )
    return names, None


def _read_csv(stream: BinaryIO, source: str, batch_rows: int) -> Iterator[DropBatch]:
    block_bytes = min(max(batch_rows * 128, 64 << 10), 16 << 20)
    chunks = read_chunks(stream, block_bytes)
    pending = b""
    for chunk in chunks:
        pending += chunk
        if b"\n" in pending or len(pending) > _MAX_HEADER_BYTES:
            break
    first, newline, rest = pending.partition(b"\n")
    if not newline and len(first) > _MAX_HEADER_BYTES:
        yield _file_reject(source, "not an OpenSky state-vector CSV: no header line")
        return
    if not first.strip():
        if rest.strip() or next(chunks, b"").strip():
            yield _file_reject(source, "not an OpenSky state-vector CSV: first line is empty")
        return
    names, problem = _header(first)
    if names is None:
        yield _file_reject(source, problem or "bad header")
        return
    parser = _BlockParser(source, names)
    line = 2  # the header is line 1
    offset = len(first) + 1
    for block in _line_blocks(rest, chunks):
        frame, rejected = parser.parse(block, line, offset)
        line += block.count(b"\n") + (0 if block.endswith(b"\n") else 1)
        offset += len(block)
        if len(frame) <= batch_rows:
            if len(frame) or rejected:
                yield DropBatch(source, frame, rejected)
            continue
        for start in range(0, len(frame), batch_rows):
            piece = frame.iloc[start : start + batch_rows].reset_index(drop=True)
            yield DropBatch(source, piece, rejected if start == 0 else [])


def _line_blocks(pending: bytes, chunks: Iterator[bytes]) -> Iterator[bytes]:
    """The rest of the stream in blocks of whole lines (the last may lack its newline)."""
    for chunk in chunks:
        pending += chunk
        cut = pending.rfind(b"\n") + 1
        if cut:
            yield pending[:cut]
            pending = pending[cut:]
        elif len(pending) > _MAX_LINE_BYTES:
            raise DropReadError(
                f"a line longer than {_MAX_LINE_BYTES} bytes; rest of file not read"
            )
    if pending:
        yield pending


# -- one block of lines --------------------------------------------------------------------
class _BlockParser:
    """Parses blocks of whole lines of one file into batch frames and rejects."""

    def __init__(self, source: str, names: list[str]) -> None:
        self.source = source
        self.names = names
        self._invalid: list[tuple[int, str]] = []
        self._read = pacsv.ReadOptions(column_names=names, use_threads=False, block_size=32 << 20)
        # OpenSky never quotes: a stray quote is data, not the start of a multi-line field.
        self._parse = pacsv.ParseOptions(
            quote_char=False, ignore_empty_lines=False, invalid_row_handler=self._on_invalid
        )
        self._typed = pacsv.ConvertOptions(
            column_types=_TYPES,
            include_columns=list(_READ),
            null_values=[""],
            strings_can_be_null=True,
            true_values=_TRUE,
            false_values=_FALSE,
        )
        self._raw = pacsv.ConvertOptions(
            column_types={name: pa.binary() for name in _READ},
            include_columns=list(_READ),
            null_values=[""],
            strings_can_be_null=True,
        )

    def _on_invalid(self, row: pacsv.InvalidRow) -> str:
        self._invalid.append(
            (row.number or 0, f"expected {row.expected_columns} fields, found {row.actual_columns}")
        )
        return "skip"

    def _table(self, block: bytes, convert: pacsv.ConvertOptions) -> pa.Table:
        self._invalid = []
        return pacsv.read_csv(
            pa.py_buffer(block),
            read_options=self._read,
            parse_options=self._parse,
            convert_options=convert,
        )

    def parse(
        self, block: bytes, first_line: int, first_offset: int
    ) -> tuple[pd.DataFrame, list[Rejected]]:
        problems: dict[int, list[str]] = {}  # row index in the table -> reasons
        text = _without_lone_returns(block)
        try:
            if not _is_utf8(text):  # Arrow could not hand a misshapen row to the handler
                raise pa.ArrowInvalid("not UTF-8")
            table = self._table(text, self._typed)
            columns = {name: table.column(name).combine_chunks() for name in _READ}
        except pa.ArrowInvalid:
            try:
                table = self._table(_ascii_where_misshapen(text, len(self.names)), self._raw)
            except pa.ArrowInvalid as exc:
                raise DropReadError(f"CSV unparseable from line {first_line}: {exc}") from exc
            columns = self._convert_raw(table, problems)
        invalid = self._invalid
        n = table.num_rows
        if invalid:
            numbers = np.array([number for number, _ in invalid], dtype=np.int64)
            lines = np.setdiff1d(np.arange(1, n + len(invalid) + 1), numbers)
            lines += first_line - 1
        else:
            lines = np.arange(first_line, first_line + n, dtype=np.int64)
        keep, data = _rows(columns, n, problems)
        rejected = [(first_line + number - 1, reason) for number, reason in invalid]
        rejected += [(int(lines[i]), "; ".join(reasons)) for i, reasons in problems.items()]
        frame = _frame(data, lines, keep)
        return frame, self._rejects(block, first_line, first_offset, sorted(rejected))

    def _convert_raw(self, table: pa.Table, problems: dict[int, list[str]]) -> dict[str, pa.Array]:
        """Typed columns from an untyped parse; a value that does not convert (or is not
        UTF-8) becomes null and a reason for its row."""
        columns: dict[str, pa.Array] = {}
        for name in _READ:
            raw = table.column(name).combine_chunks()
            try:
                text = raw.cast(pa.string())
            except pa.ArrowInvalid:
                decoded = []
                for i, value in enumerate(raw.to_pylist()):
                    try:
                        decoded.append(None if value is None else value.decode())
                    except UnicodeDecodeError:
                        problems.setdefault(i, []).append(f"{name} is not valid UTF-8")
                        decoded.append(None)
                text = pa.array(decoded, type=pa.string())
            if name in _TEXTS:
                columns[name] = text
                continue
            series = pd.Series(text.to_numpy(zero_copy_only=False), dtype=object)
            if name == "onground":
                values = series.map(dict.fromkeys(_TRUE, True) | dict.fromkeys(_FALSE, False))
                what = "is not True or False"
                bad = values.isna() & series.notna()
                converted = pa.array(
                    values.where(~bad).to_numpy(dtype=object), type=pa.bool_(), from_pandas=True
                )
            else:
                # Padded as Arrow's typed conversion accepts it.
                converted = _numbers(pc.utf8_trim(text, " \t"))
                what = "is not a number"
                bad = pd.Series(
                    pc.and_(pc.is_null(converted), pc.is_valid(text)).to_numpy(zero_copy_only=False)
                )
            for row, raw in zip(np.flatnonzero(bad), series[bad], strict=True):
                problems.setdefault(int(row), []).append(f"{name} {what}: {raw[:40]!r}")
            columns[name] = converted
        return columns

    def _rejects(
        self, block: bytes, first_line: int, first_offset: int, rejected: list[tuple[int, str]]
    ) -> list[Rejected]:
        if not rejected:
            return []
        ends = np.flatnonzero(np.frombuffer(block, dtype=np.uint8) == 10)
        starts = np.concatenate(([0], ends + 1))
        out = []
        for line, reason in rejected:
            i = line - first_line
            start = int(starts[i])
            end = int(ends[i]) if i < len(ends) else len(block)
            text = block[start:end].rstrip(b"\r").decode("utf-8", "replace")[:_PREVIEW_CHARS]
            out.append(Rejected(self.source, reason, text, line, first_offset + start))
        return out


def _without_lone_returns(block: bytes) -> bytes:
    """Arrow ends a row at a lone CR; OpenSky never writes one, so it is damage inside a
    line. It becomes NUL (same length): the line stays one row, and the field that holds it
    fails to parse or fails validation, so the row is rejected with its own line number."""
    if b"\r" not in block:
        return block
    return re.sub(rb"\r(?!\n)", b"\x00", block)


def _is_utf8(block: bytes) -> bool:
    """True for ASCII (every real OpenSky block, checked at memory speed) and other UTF-8."""
    if block.isascii():
        return True
    try:
        block.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _ascii_where_misshapen(block: bytes, fields: int) -> bytes:
    """Arrow passes a row with the wrong number of fields to the handler as text, and fails
    the whole block when that row is not UTF-8. Such rows are rejected anyway, so their
    non-ASCII bytes become `?` (same length: offsets and previews hold)."""
    lines = block.split(b"\n")
    return b"\n".join(
        line
        if line.isascii() or line.rstrip(b"\r").count(b",") == fields - 1
        else bytes(c if c < 0x80 else 0x3F for c in line)
        for line in lines
    )


# -- columns -------------------------------------------------------------------------------
def _trimmed(values: pa.Array) -> pa.Array:
    """Text without surrounding blanks; blank becomes null."""
    trimmed = pc.utf8_trim_whitespace(values)
    return pc.if_else(pc.equal(pc.utf8_length(trimmed), 0), pa.scalar(None, pa.string()), trimmed)


def _squawks(values: pa.Array) -> pa.Array:
    """Squawks as four digits: a code written as a number lost its leading zeros."""
    text = _trimmed(values)
    short = pc.fill_null(pc.match_substring_regex(text, r"^[0-7]{1,3}$"), False)
    return pc.if_else(short, pc.utf8_lpad(text, 4, "0"), text)


def _rows(
    columns: dict[str, pa.Array], n: int, problems: dict[int, list[str]]
) -> tuple[np.ndarray, dict[str, pa.Array]]:
    """Which rows can be stored, and the columns in the data model's terms; the reasons
    for the others are added to `problems`."""
    time_text = _trimmed(columns["time"])
    # The position's own time: `lastposupdate`, `time` where it is empty. One that is given
    # but no time rejects the row: `time` in its place would date a repeated position anew.
    given_position = _trimmed(columns["lastposupdate"])
    time_exact = epoch_nanoseconds(time_text)
    position_exact = epoch_nanoseconds(given_position)
    icao24 = pc.utf8_lower(_trimmed(columns["icao24"]))
    has_time = pc.is_valid(time_text).to_numpy(zero_copy_only=False)
    unplaced = np.isnan(columns["lat"].to_numpy(zero_copy_only=False)) | np.isnan(
        columns["lon"].to_numpy(zero_copy_only=False)
    )
    hex6 = pc.fill_null(pc.match_substring_regex(icao24, r"^[0-9a-f]{6}$"), True)
    checks = [
        (~has_time, "time is missing"),
        *_time_checks("time", time_text, time_exact),
        *_time_checks("lastposupdate", given_position, position_exact),
        (pc.is_null(icao24).to_numpy(zero_copy_only=False), "icao24 is missing"),
        (~hex6.to_numpy(zero_copy_only=False), "icao24 is not six hex digits"),
        (unplaced, "position missing (lat/lon empty)"),
    ]
    bad = np.zeros(n, dtype=bool)
    for flags, reason in checks:
        if flags.any():
            for i in np.flatnonzero(flags):
                problems.setdefault(int(i), []).append(reason)
            bad |= flags
    for row in problems:  # rows a text parse found unconvertible values in
        bad[row] = True
    callsign = _trimmed(columns["callsign"])
    has_position_time = pc.is_valid(given_position)
    position_text = pc.if_else(has_position_time, given_position, time_text)
    position_time = np.where(
        has_position_time.to_numpy(zero_copy_only=False), position_exact, time_exact
    )
    data = {
        "raw_timestamp": position_text,
        "position_time": pa.array(position_time.astype("datetime64[us]")),
        "lat": columns["lat"],
        "lon": columns["lon"],
        "velocity": columns["velocity"],
        "heading": columns["heading"],
        "vertrate": columns["vertrate"],
        "baroaltitude": columns["baroaltitude"],
        "onground": columns["onground"],
        "squawk": _squawks(columns["squawk"]),
        "icao24": icao24,
        "callsign": callsign,
    }
    return ~bad, data


# A number as Arrow's CSV conversion reads one: an ASCII decimal with an optional exponent,
# or NaN, Inf or Infinity in any case, signed or not. Text is matched, then cast by Arrow, so
# a value reads the same (correctly rounded) in a block Arrow refused as in a clean one.
_NUMBER = r"^[+-]?((\d+\.?\d*|\.\d+)([eE][+-]?\d+)?|(?i:nan|inf|infinity))$"


def _numbers(text: pa.Array) -> pa.Array:
    """Float64 of the text; null where it is null or not a number."""
    numeric = pc.fill_null(pc.match_substring_regex(text, _NUMBER), False)
    return pc.cast(pc.if_else(numeric, text, pa.scalar(None, pa.string())), pa.float64())


def _epoch_seconds(text: pa.Array) -> np.ndarray:
    """Epoch seconds of trimmed text; NaN where it is empty or not a number."""
    numbers = pc.fill_null(_numbers(text), np.nan)
    return np.asarray(numbers.to_numpy(zero_copy_only=False), dtype=float)


def _time_checks(name: str, text: pa.Array, exact: np.ndarray) -> list[tuple[np.ndarray, str]]:
    """The reasons an epoch-seconds field that is given is no time this project stores
    (its range decided on `exact`, its value as it is stored). Only the values that are no
    such time are looked at again, to say why."""
    unusable = pc.is_valid(text).to_numpy(zero_copy_only=False) & np.isnat(exact)
    if not unusable.any():
        return []
    numbers = np.full(len(exact), np.nan)
    rows = np.flatnonzero(unusable)
    numbers[rows] = _epoch_seconds(text.take(pa.array(rows)))
    early = numbers < (EARLIEST_TIME + LATEST_TIME) / 2
    return [
        (unusable & ~np.isfinite(numbers), f"{name} is not a number"),
        (unusable & np.isfinite(numbers) & early, f"{name} is before 2000-01-01"),
        (unusable & np.isfinite(numbers) & ~early, f"{name} is after 2099"),
    ]


def _floats(values: pa.Array, scale: float | None = None) -> pd.arrays.FloatingArray:
    numbers = values.to_numpy(zero_copy_only=False)
    mask = np.isnan(numbers)
    if scale is not None:
        # A value near the float limit overflows to infinity, which validation rejects as
        # out of range: not worth a warning in the run's log.
        with np.errstate(over="ignore"):
            numbers = np.round(numbers * scale)
    return pd.arrays.FloatingArray(np.where(mask, 0.0, numbers), mask)


def _strings(values: pa.Array) -> pd.arrays.ArrowStringArray:
    """Arrow text as the batch's text dtype, without copying."""
    return pd.arrays.ArrowStringArray(values)


def _frame(data: dict[str, pa.Array], lines: np.ndarray, keep: np.ndarray) -> pd.DataFrame:
    """The batch frame of the kept rows, with every batch column and its dtype."""
    if not keep.all():
        index = pa.array(np.flatnonzero(keep))
        data = {name: values.take(index) for name, values in data.items()}
        lines = lines[keep]
    n = len(lines)
    onground = data["onground"]
    callsign = _strings(data["callsign"])

    def nothing() -> pd.arrays.ArrowStringArray:
        return _strings(pa.nulls(n, pa.string()))

    frame = pd.DataFrame(
        {
            "flight_id": nothing(),
            # Read exactly as any drop's epoch seconds are, finer digits than the database's
            # microseconds dropped.
            "timestamp": pd.to_datetime(
                data["position_time"].to_numpy(zero_copy_only=False), utc=True
            ).astype("datetime64[ns, UTC]"),
            "latitude": _floats(data["lat"]),
            "longitude": _floats(data["lon"]),
            "altitude": _floats(data["baroaltitude"], FEET_PER_METRE),
            "airspeed": _floats(data["velocity"], KNOTS_PER_METRE_PER_SECOND),
            "track": _floats(data["heading"]),
            "vertical_rate": _floats(data["vertrate"], FEET_PER_MINUTE_PER_METRE_PER_SECOND),
            "on_ground": pd.arrays.BooleanArray(
                pc.fill_null(onground, False).to_numpy(zero_copy_only=False),
                pc.is_null(onground).to_numpy(zero_copy_only=False),
            ),
            "squawk": _strings(data["squawk"]),
            **{name: nothing() for name in METADATA_COLUMNS},
            "record": lines,
            "byte_offset": pd.arrays.IntegerArray(
                np.zeros(n, dtype=np.int64), np.ones(n, dtype=bool)
            ),
            "raw_timestamp": _strings(data["raw_timestamp"]),
        }
    )
    frame["flight_number"] = callsign
    frame["icao24"] = _strings(data["icao24"])
    frame["callsign"] = callsign
    return frame
