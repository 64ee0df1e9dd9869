"""Records of one partition that share a key `(flight_id, timestamp)`.

The last record read wins. An earlier one with the same content is an exact duplicate
(dropped and counted); with other content it is a conflicting duplicate (quarantined).
Keys seen in earlier batches are kept as sorted runs of 64-bit hashes, 8 bytes a row, so a
day of 10 million rows costs 80 MB here; a hash collision could only mistake a new row for one seen
before, and then the store is asked, which settles it exactly.
"""

from __future__ import annotations

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


class PartitionKeys:
    """The keys a partition run has written so far."""

    # Keys per sorted run. A new batch's keys are merged into the last run until it holds
    # this many, then start a new one: merging into one array would copy every key seen so far
    # for each batch (quadratic in the day's size, and twice the memory at each copy).
    RUN_KEYS = 1 << 22

    def __init__(self) -> None:
        self._runs: list[np.ndarray] = []

    def _seen_before(self, keys: np.ndarray) -> np.ndarray:
        seen = np.zeros(len(keys), dtype=bool)
        for run in self._runs:
            pos = np.searchsorted(run, keys).clip(max=len(run) - 1)
            seen |= run[pos] == keys
        return seen

    def _remember(self, fresh: np.ndarray) -> None:
        """Add sorted keys not seen before."""
        if self._runs and len(self._runs[-1]) + len(fresh) <= self.RUN_KEYS:
            last = self._runs[-1]
            self._runs[-1] = np.insert(last, np.searchsorted(last, fresh), fresh)
        elif len(fresh):
            self._runs.append(fresh)

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
        seen_mask = self._seen_before(keys)
        self._remember(np.unique(keys[~seen_mask]))
        return BatchKeys(frame[~seen_mask], frame[seen_mask], exact, conflicting)


def superseded_reason(row: Mapping[Hashable, Any], by_source: str, by_record: int) -> str:
    return (
        f"conflicting duplicate of ({row['flight_id']}, {row['timestamp']}): superseded "
        f"by record {by_record} of {by_source}"
    )
