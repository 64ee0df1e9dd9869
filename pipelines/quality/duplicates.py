"""Records of one partition that share a key `(flight_id, timestamp)`.

The last record read wins. An earlier one with the same content is an exact duplicate
(dropped and counted); with other content it is a conflicting duplicate (quarantined).
Keys seen in earlier batches are kept as sorted 64-bit hashes, 8 bytes a row, so a day of
10 million rows costs 80 MB here; a hash collision could only mistake a new row for one seen
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

    def __init__(self) -> None:
        self._seen = np.empty(0, dtype=np.uint64)

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
        if len(self._seen):
            pos = np.searchsorted(self._seen, keys).clip(max=len(self._seen) - 1)
            seen_mask = self._seen[pos] == keys
        else:
            seen_mask = np.zeros(len(keys), dtype=bool)
        fresh = np.unique(keys[~seen_mask])
        self._seen = np.insert(self._seen, np.searchsorted(self._seen, fresh), fresh)
        return BatchKeys(frame[~seen_mask], frame[seen_mask], exact, conflicting)


def superseded_reason(row: Mapping[Hashable, Any], by_source: str, by_record: int) -> str:
    return (
        f"conflicting duplicate of ({row['flight_id']}, {row['timestamp']}): superseded "
        f"by record {by_record} of {by_source}"
    )
