"""Position reports among OpenSky state vectors: a state vector repeats the aircraft's last
known position until a new one arrives, so only a row with a new position time is a report.

Rows are OpenSky's when they name an aircraft (`icao24`) and no flight; their `timestamp` is
the position's own time (`lastposupdate`). Taken per aircraft in reading order (files in name
order, so hourly files in time order), a row is a repeat when its position time is not after
the latest one the aircraft had earlier in the day, or falls before the day began: that
position was received on the day before, whose files hold it. Repeats are counted as
duplicates. A row whose position time is after the day is not this day's: it is rejected.
Deciding from the day's own rows only keeps every day's result independent of its neighbours.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

import numpy as np
import pandas as pd

from pipelines.flights.records import Rejected
from pipelines.quality.validate import raw_record

AFTER_THE_DAY = "position time after the partition's day"
_NEVER = np.iinfo(np.int64).min


@dataclass
class ReportSplit:
    """A batch's OpenSky rows sorted out: the frame without repeats and rejects."""

    frame: pd.DataFrame
    repeats: int
    rejected: list[Rejected] = field(default_factory=list)


class PositionReports:
    """The latest position time of each aircraft seen so far in one day's rows."""

    def __init__(self, day: date) -> None:
        self._start = pd.Timestamp(day.isoformat(), tz="UTC").value
        self._end = self._start + pd.Timedelta(days=1).value
        self._latest = pd.Series(dtype=np.int64)  # per icao24, nanoseconds
        self._last_place = pd.DataFrame({"latitude": [], "longitude": []}, dtype=float)

    def split(self, frame: pd.DataFrame, source: str) -> ReportSplit:
        """`frame` without the repeats (counted) and the rows after the day (rejected)."""
        todo = (
            frame["flight_id"].isna() & frame["icao24"].notna() & frame["timestamp"].notna()
        ).to_numpy()
        if not todo.any():
            return ReportSplit(frame, 0)
        rows = np.flatnonzero(todo)
        aircraft = frame["icao24"].to_numpy(dtype=object)[rows]
        times = frame["timestamp"].to_numpy(dtype="datetime64[ns]").view(np.int64)[rows]
        late = times >= self._end
        counted = pd.Series(np.where(late, _NEVER, times))  # a rejected row moves nothing
        running = counted.groupby(aircraft, sort=False).cummax()
        before = running.groupby(aircraft, sort=False).shift(fill_value=_NEVER).to_numpy()
        earlier = np.maximum(before, self._latest.reindex(aircraft, fill_value=_NEVER).to_numpy())
        repeat = ~late & (
            (times < self._start) | (times <= earlier) | self._same_place(frame, rows, aircraft)
        )
        batch_latest = counted.groupby(aircraft, sort=False).max()
        self._latest = pd.concat([self._latest, batch_latest]).groupby(level=0).max()
        return self._sorted_out(frame, source, rows, repeat, late)

    def _same_place(
        self, frame: pd.DataFrame, rows: np.ndarray, aircraft: np.ndarray
    ) -> np.ndarray:
        """Rows of an aircraft not on the ground at exactly the place of its previous row: a
        position that was not updated, whatever the `lastposupdate` beside it says (some
        sources rewrite it to `time`); an aircraft moving at speed never reports one place
        twice. A parked aircraft does, and each of its reports is kept."""
        place = pd.DataFrame(
            {
                "latitude": frame["latitude"].to_numpy(dtype=float, na_value=np.nan)[rows],
                "longitude": frame["longitude"].to_numpy(dtype=float, na_value=np.nan)[rows],
            }
        )
        before = place.groupby(aircraft, sort=False).shift()
        carried = self._last_place.reindex(aircraft).set_axis(place.index)
        before = before.fillna(carried)
        last = place.groupby(aircraft, sort=False).last()
        kept = self._last_place[~self._last_place.index.isin(last.index)]
        self._last_place = pd.concat([kept, last])
        ground = frame["on_ground"].to_numpy(dtype=bool, na_value=False)[rows]
        same = place["latitude"].eq(before["latitude"]) & place["longitude"].eq(before["longitude"])
        return np.asarray(same.to_numpy(dtype=bool) & ~ground, dtype=bool)

    def _sorted_out(
        self,
        frame: pd.DataFrame,
        source: str,
        rows: np.ndarray,
        repeat: np.ndarray,
        late: np.ndarray,
    ) -> ReportSplit:
        rejected = [
            Rejected(
                source,
                f"{AFTER_THE_DAY} (got {row['timestamp']})",
                raw_record(row),
                int(row["record"]),
                None if pd.isna(row["byte_offset"]) else int(row["byte_offset"]),
            )
            for row in frame.iloc[rows[late]].to_dict("records")
        ]
        drop = np.zeros(len(frame), dtype=bool)
        drop[rows[repeat | late]] = True
        kept = frame[~drop].reset_index(drop=True) if drop.any() else frame
        return ReportSplit(kept, int(repeat.sum()), rejected)
