"""Records of one partition that share a key `(flight_id, timestamp)`.

The last record read wins. An earlier one with the same content is an exact duplicate
(dropped and counted); with other content it is a conflicting duplicate (quarantined).
Keys seen in earlier batches are kept as sorted runs of 64-bit hashes, 8 bytes a row, the
full ones in a temporary file (32 MiB of memory whatever the day's size); a hash collision
could only mistake a new row for one seen before, and then the store is asked, which settles
it exactly.
"""

from __future__ import annotations

import io
import tempfile
from collections.abc import Hashable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from pipelines.flights.records import METADATA_COLUMNS, POSITION_COLUMNS, Rejected
from pipelines.quality.validate import raw_record

KEY_COLUMNS = ["flight_id", "timestamp"]
CONTENT_COLUMNS = [c for c in POSITION_COLUMNS if c not in KEY_COLUMNS]


def key_hashes(frame: pd.DataFrame) -> np.ndarray:
    return pd.util.hash_pandas_object(frame[KEY_COLUMNS], index=False).to_numpy()


def content_hashes(frame: pd.DataFrame, columns: list[str]) -> np.ndarray:
    return pd.util.hash_pandas_object(frame[columns], index=False).to_numpy()


@dataclass
class BatchKeys:
    """A batch split by key: rows new to the partition, rows whose key an earlier batch had
    (the store holds the earlier record), and what was settled within the batch."""

    new: pd.DataFrame
    seen: pd.DataFrame
    exact_duplicates: int
    conflicting: list[Rejected] = field(default_factory=list)


@dataclass(frozen=True)
class _Span:
    """The time span of a run's rows, to skip runs a batch cannot meet."""

    first: pd.Timestamp
    last: pd.Timestamp

    def meets(self, other: _Span) -> bool:
        return self.first <= other.last and other.first <= self.last

    def join(self, other: _Span | None) -> _Span:
        if other is None:
            return self
        return _Span(min(self.first, other.first), max(self.last, other.last))


@dataclass(frozen=True)
class _FinishedRun:
    """A full run written to the spill file: where it lies there, and its rows' time span."""

    offset: int
    count: int
    span: _Span


class PartitionKeys:
    """The keys a partition run has written so far, in memory bounded whatever the day's size.

    Keys are kept as sorted runs of at most RUN_KEYS hashes, each with the time span of its
    rows. Only the run being filled stays in memory; a full run goes to a temporary file and
    is mapped again only while a batch whose time span meets its own is checked. Drops arrive
    in time order, so a batch meets the run being filled and rarely a finished one; a drop in
    another order costs reading finished runs again, never memory.
    """

    # Keys per sorted run (8 bytes each). A batch's keys are merged into the run being filled
    # until it holds this many: merging into one ever-growing array would copy every key seen
    # so far for each batch (quadratic in the day's size).
    RUN_KEYS = 1 << 22

    def __init__(self) -> None:
        self._filling = np.empty(0, dtype=np.uint64)
        self._filling_span: _Span | None = None
        self._finished: list[_FinishedRun] = []
        self._spill = tempfile.TemporaryFile(prefix="flights-keys-")  # noqa: SIM115 - closed in close()

    def __enter__(self) -> PartitionKeys:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._spill.close()

    @property
    def keys_in_memory(self) -> int:
        return len(self._filling)

    def _seen_before(self, keys: np.ndarray, span: _Span) -> np.ndarray:
        seen = _found_in(self._filling, keys)
        for run in self._finished:
            if run.span.meets(span):
                mapped = np.memmap(
                    self._spill, dtype=np.uint64, mode="r", offset=run.offset, shape=(run.count,)
                )
                seen |= _found_in(mapped, keys)
                del mapped  # unmapped: its pages leave this process's memory
        return seen

    def _remember(self, fresh: np.ndarray, span: _Span) -> None:
        """Add sorted keys not seen before, of rows within `span`."""
        if len(fresh) == 0:
            return
        if len(self._filling) + len(fresh) > self.RUN_KEYS and len(self._filling):
            assert self._filling_span is not None
            offset = self._spill.seek(0, io.SEEK_END)
            self._spill.write(self._filling.tobytes())
            self._spill.flush()
            self._finished.append(_FinishedRun(offset, len(self._filling), self._filling_span))
            self._filling, self._filling_span = fresh, span
            return
        self._filling = np.insert(self._filling, np.searchsorted(self._filling, fresh), fresh)
        self._filling_span = span.join(self._filling_span)

    def split(self, frame: pd.DataFrame, source: str) -> BatchKeys:
        keys = key_hashes(frame)
        superseded = pd.Series(keys).duplicated(keep="last").to_numpy()
        exact = 0
        conflicting: list[Rejected] = []
        if superseded.any():
            content = content_hashes(frame, [*CONTENT_COLUMNS, *METADATA_COLUMNS])
            by_key = pd.DataFrame({"content": content, "record": frame["record"].to_numpy()})
            winner = by_key.groupby(keys).transform("last")
            same = superseded & (content == winner["content"].to_numpy())
            exact = int(same.sum())
            lost = superseded & ~same
            for row, by in zip(frame[lost].to_dict("records"), winner["record"][lost], strict=True):
                conflicting.append(
                    Rejected(
                        source,
                        superseded_reason(row, source, int(by)),
                        raw_record(row),
                        int(row["record"]),
                        None if pd.isna(row["byte_offset"]) else int(row["byte_offset"]),
                    )
                )
            frame, keys = frame[~superseded], keys[~superseded]
        if frame.empty:
            return BatchKeys(frame, frame, exact, conflicting)
        times = frame["timestamp"]
        span = _Span(times.min(), times.max())
        seen_mask = self._seen_before(keys, span)
        self._remember(np.unique(keys[~seen_mask]), span)
        return BatchKeys(frame[~seen_mask], frame[seen_mask], exact, conflicting)


def _found_in(run: np.ndarray, keys: np.ndarray) -> np.ndarray:
    """Which keys a sorted run holds."""
    if len(run) == 0:
        return np.zeros(len(keys), dtype=bool)
    found: np.ndarray = run[np.searchsorted(run, keys).clip(max=len(run) - 1)] == keys
    return found


def superseded_reason(row: Mapping[Hashable, Any], by_source: str, by_record: int) -> str:
    return (
        f"conflicting duplicate of ({row['flight_id']}, {row['timestamp']}): superseded "
        f"by record {by_record} of {by_source}"
    )
