"""Split a decoded batch into rows to store and rows to quarantine, each with its reasons.

Pandera runs lazily, so one bad value rejects its row, never the batch.
"""

from __future__ import annotations

import json
import math
import warnings
from collections.abc import Hashable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import pandera.pandas as pa

from pipelines.drops.batches import DropBatch
from pipelines.flights.records import Rejected
from pipelines.quality.schema import POSITION_SCHEMA

_INTEGER_COLUMNS = ("altitude", "airspeed", "vertical_rate")
_RAW_FIELDS = [c for c in POSITION_SCHEMA.columns if c != "timestamp"]
# A row's reasons in the schema's column order: Pandera orders failure cases by how the
# batch failed, so the same row would otherwise read differently beside other rows.
_COLUMN_ORDER = {name: i for i, name in enumerate(POSITION_SCHEMA.columns)}


@dataclass
class ValidatedBatch:
    good: pd.DataFrame
    rejected: list[Rejected]


def _reason(column: str, check: str, failure: object, raw_timestamp: object) -> str:
    if column == "timestamp":
        if check == "not_nullable":
            if raw_timestamp is None or raw_timestamp is pd.NA or not str(raw_timestamp).strip():
                return "timestamp is missing"
            check = "not ISO 8601 or UNIX epoch seconds within 2000..2099"
        # As the drop wrote it, not as it parsed.
        return f"timestamp: {check} (got {str(raw_timestamp)[:40]!r})"
    if check == "not_nullable":
        return f"{column} is missing"
    # Pandera's failure cases are numpy scalars when every failure of the batch is a number:
    # the value is shown as the drop wrote it, whatever else failed beside it.
    value = failure.item() if isinstance(failure, np.generic) else failure
    return f"{column}: {check} (got {value!r})"


def _json_value(value: object) -> object:
    """Non-finite numbers as text: JSON has no NaN or Infinity."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    return value


def raw_record(row: Mapping[Hashable, Any]) -> str:
    """The record as JSON of its decoded fields, the timestamp as it was written (always
    valid JSON; control characters come out escaped)."""
    fields = {k: _json_value(row[k]) for k in _RAW_FIELDS if k in row and not pd.isna(row[k])}
    fields["timestamp"] = row.get("raw_timestamp")
    return json.dumps(fields, default=str, ensure_ascii=False, allow_nan=False)


def validate_batch(batch: DropBatch) -> ValidatedBatch:
    """Good rows (storage types) and one Rejected per bad row with all its reasons."""
    frame = batch.frame
    rejected = list(batch.rejected)
    if frame.empty:
        return ValidatedBatch(frame, rejected)
    try:
        with warnings.catch_warnings():
            # Pandera joins the failure cases of all checks with pandas.concat, which warns
            # (FutureWarning, in every run's log) when one check's cases are all missing
            # values, e.g. a missing latitude beside a bad flight id. Each reason is built
            # from its own case below, so the joined frame's dtypes do not matter.
            warnings.filterwarnings(
                "ignore",
                message="The behavior of DataFrame concatenation with empty or all-NA",
                category=FutureWarning,
            )
            POSITION_SCHEMA.validate(frame, lazy=True)
        bad_reasons: dict[int, list[tuple[int, str]]] = {}
    except pa.errors.SchemaErrors as err:
        cases = err.failure_cases
        row_cases = cases[cases["index"].notna()]
        if len(row_cases) < len(cases):
            raise  # a column-level failure is a reader bug, not bad input
        bad_reasons = {}
        raw_times = frame["raw_timestamp"]
        for idx, column, check, failure in zip(
            row_cases["index"],
            row_cases["column"],
            row_cases["check"],
            row_cases["failure_case"],
            strict=True,
        ):
            reason = _reason(column, str(check), failure, raw_times.at[int(idx)])
            order = _COLUMN_ORDER.get(column, len(_COLUMN_ORDER))
            bad_reasons.setdefault(int(idx), []).append((order, reason))
    if bad_reasons:
        bad = frame.loc[sorted(bad_reasons)]
        for idx, row in zip(bad.index, bad.to_dict("records"), strict=True):
            rejected.append(
                Rejected(
                    batch.source_file,
                    "; ".join(dict.fromkeys(reason for _, reason in sorted(bad_reasons[idx]))),
                    raw_record(row),
                    int(row["record"]),
                    None if pd.isna(row["byte_offset"]) else int(row["byte_offset"]),
                )
            )
        frame = frame.drop(index=bad.index)
    good = frame.assign(**{c: _whole_numbers(frame[c]) for c in _INTEGER_COLUMNS})
    return ValidatedBatch(good, rejected)


def _whole_numbers(column: pd.Series) -> pd.arrays.IntegerArray:
    """Validated whole-number floats as Int64, built from the masked array's own buffers
    (pandas' generic cast re-checks every value, which the schema has just done)."""
    values = column.array
    mask = values.isna()
    data = np.where(mask, 0, values.to_numpy(dtype="float64", na_value=0.0)).astype("int64")
    return pd.arrays.IntegerArray(data, np.asarray(mask, dtype=bool))
