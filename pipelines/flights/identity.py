"""Flights from aircraft positions: OpenSky gives `icao24` and `callsign`, never a flight id.

The rule (docs/opensky.md), applied to each aircraft's positions in the order they are read:

1. A position more than `gap` (default 30 min) after the aircraft's latest earlier position
   starts a new flight; so does the aircraft's first position.
2. A broadcast callsign that differs from the one in force starts a new flight. The callsign
   in force is the last one broadcast since rule 1 last applied; an empty callsign is
   unknown, never a change.
3. On the ground, at most one new flight starts per ground run: at the first position where
   the callsign changes or the aircraft has been on the ground for `landed` (default 20 min)
   since the run began, unless a flight already started in this run (the aircraft was first
   seen there, or its callsign changed there). A ground run is broken only by `flicker`
   (one minute) or more of airborne positions, so a flickering on-ground flag does not land
   a taxiing aircraft; time unseen between two ground positions counts as ground time.

A flight's id is its aircraft's `icao24` followed by its first second in base 36, counted from
2000-01-01 UTC and padded to six digits: 12 characters until 2068, the same on every run. The
identifier keeps each aircraft's state across batches and files of a day, so the ids do not
depend on batch size; a day starts from the store's last points of the aircraft seen within
`gap` before midnight, so a flight continuing across midnight keeps its id.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

import numpy as np
import pandas as pd
import pyarrow as pa

from pipelines import settings

ID_EPOCH = 946_684_800  # 2000-01-01T00:00:00Z in UNIX seconds
_DIGITS = "0123456789abcdefghijklmnopqrstuvwxyz"
FLICKER = timedelta(minutes=1)

# Per-aircraft state: the flight in progress, the latest time seen, the callsign in force,
# whether the aircraft is in a ground run (its start, whether a flight started in it) and,
# when its last position was airborne, since when. Times are UNIX seconds (NaN = none).
_STATE = ("flight_id", "last", "known", "in_run", "run_start", "has_start", "air_since")


@dataclass(frozen=True)
class FlightRule:
    """The thresholds of the rule: `gap` (rule 1), `landed` and `flicker` (rule 3)."""

    gap: timedelta = timedelta(minutes=30)
    landed: timedelta = timedelta(minutes=20)
    flicker: timedelta = FLICKER

    @classmethod
    def from_settings(cls) -> FlightRule:
        return cls(gap=settings.flight_gap(), landed=settings.landed_ground_time())


def flight_id(icao24: str, first_second: int) -> str:
    """`icao24` + base-36 seconds since 2000-01-01, six digits."""
    value = first_second - ID_EPOCH
    if value < 0:
        raise ValueError("flight ids start at 2000-01-01")
    digits = ""
    while value:
        value, digit = divmod(value, 36)
        digits = _DIGITS[digit] + digits
    return icao24 + digits.rjust(6, "0")


def needs_flight_ids(frame: pd.DataFrame) -> bool:
    """Whether the batch has rows that name an aircraft but no flight."""
    return bool((frame["flight_id"].isna() & frame["icao24"].notna()).any())


def _empty_state() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "flight_id": pd.Series(dtype=object),
            "last": pd.Series(dtype=float),
            "known": pd.Series(dtype=object),
            "in_run": pd.Series(dtype=bool),
            "run_start": pd.Series(dtype=float),
            "has_start": pd.Series(dtype=bool),
            "air_since": pd.Series(dtype=float),
        }
    )


def _seconds(values: pd.Series) -> np.ndarray:
    """UTC timestamps as float UNIX seconds, NaN for NaT."""
    ts = pd.DatetimeIndex(values)
    out: np.ndarray = ts.asi8 / 1e9  # type: ignore[attr-defined]  # missing from pandas-stubs
    out[ts.isna()] = np.nan
    return out


def state_from_points(points: pd.DataFrame) -> pd.DataFrame:
    """The identifier's state from stored last points (see `aircraft_state`): per aircraft
    its flight, last time, callsign, on-ground flag, and when on the ground the start of the
    flight's ground run and the flight's first time."""
    if points.empty:
        return _empty_state()
    last = _seconds(pd.to_datetime(points["last_time"], utc=True))
    ground = points["on_ground"].eq(True).to_numpy()
    since = _seconds(pd.to_datetime(points["ground_since"], utc=True))
    first = _seconds(pd.to_datetime(points["first_time"], utc=True))
    callsign = points["callsign"].astype(object)
    return pd.DataFrame(
        {
            "flight_id": points["flight_id"].to_numpy(dtype=object),
            "last": last,
            "known": np.where(callsign.notna(), callsign, np.array(None)),
            "in_run": ground,
            "run_start": np.where(ground, since, np.nan),
            "has_start": ground & (first >= since),
            "air_since": np.where(ground, np.nan, last),
        },
        index=pd.Index(points["icao24"].to_numpy(dtype=object), name="icao24"),
    )


# Group helpers over rows sorted by group; `starts` marks each group's first row.
def _shift(values: np.ndarray, starts: np.ndarray, fill: np.ndarray) -> np.ndarray:
    """Each row's predecessor within its group; `fill` at each group's first row."""
    out = np.empty_like(values)
    out[1:] = values[:-1]
    out[starts] = fill[starts]
    return out


def _ffill(values: np.ndarray, starts: np.ndarray) -> np.ndarray:
    """NaN replaced by the group's last earlier value (NaN if none)."""
    index = np.where(~np.isnan(values) | starts, np.arange(len(values)), 0)
    np.maximum.accumulate(index, out=index)
    return values[index]


def _cumsum(flags: np.ndarray, starts: np.ndarray) -> np.ndarray:
    """Running count of `flags` within each group, this row included."""
    total = np.cumsum(flags, dtype=np.int64)
    before = (total - flags)[starts]
    return np.asarray(total - before[np.cumsum(starts) - 1])


def _cummax(micros: np.ndarray, group: np.ndarray) -> np.ndarray:
    """Running maximum within each group: one accumulate over values lifted per group."""
    low = micros.min()
    span = int(micros.max() - low) + 1
    if span * (int(group[-1]) + 1) < 2**62:
        lift = group.astype(np.int64) * span
        return np.asarray(np.maximum.accumulate(micros - low + lift) - lift + low)
    return pd.Series(micros).groupby(group).cummax().to_numpy()


class FlightIdentifier:
    """Assigns flight ids to positions, one batch after another, for one day."""

    def __init__(self, rule: FlightRule | None = None, seed: pd.DataFrame | None = None) -> None:
        self.rule = rule or FlightRule()
        self._state = _empty_state() if seed is None else seed[list(_STATE)]

    @property
    def state(self) -> pd.DataFrame:
        """Per aircraft (index `icao24`): the state the next batch starts from."""
        return self._state

    def assign(self, frame: pd.DataFrame) -> pd.DataFrame:
        """Fill `flight_id` where it is empty and the row has `icao24` and a timestamp (in
        place; the frame is returned)."""
        todo = (
            frame["flight_id"].isna() & frame["icao24"].notna() & frame["timestamp"].notna()
        ).to_numpy()
        if not todo.any():
            return frame
        rows = np.flatnonzero(todo)
        codes, aircraft = pd.factorize(frame["icao24"].array)
        codes = codes[rows]
        order = np.argsort(codes, kind="stable")
        # Callsigns as codes; the seed's callsigns join the same code space.
        cs_codes, cs_texts = pd.factorize(frame["callsign"].array)
        texts = pd.Index(np.asarray(cs_texts, dtype=object))
        known = self._state["known"].reindex(aircraft)
        extra = pd.Index(known.dropna().unique()).difference(texts)
        texts = texts.append(extra)
        ids = self._identify(
            group=pd.factorize(codes[order], sort=True)[0],
            aircraft=np.asarray(aircraft, dtype=object)[np.unique(codes)],
            micros=pd.DatetimeIndex(frame["timestamp"]).asi8[rows][order] // 1000,  # type: ignore[attr-defined]
            callsign=cs_codes[rows][order],
            texts=texts,
            ground=frame["on_ground"].to_numpy(dtype=bool, na_value=False)[rows][order],
        )
        # pandas-stubs reject na_value=None, which pandas accepts (missing ids stay None).
        out = frame["flight_id"].to_numpy(dtype=object, na_value=None)  # type: ignore[call-overload]
        out[rows[order]] = ids
        frame["flight_id"] = pd.arrays.ArrowStringArray(pa.array(out, type=pa.string()))
        return frame

    def _identify(
        self,
        *,
        group: np.ndarray,
        aircraft: np.ndarray,
        micros: np.ndarray,
        callsign: np.ndarray,
        texts: pd.Index,
        ground: np.ndarray,
    ) -> np.ndarray:
        """Flight ids of rows sorted by aircraft (`group` 0, 1, ...), in reading order within
        each; `callsign` holds codes into `texts` (-1 = none)."""
        gap_s = self.rule.gap.total_seconds()
        landed_s = self.rule.landed.total_seconds()
        flicker_s = self.rule.flicker.total_seconds()
        n = len(micros)
        t = micros / 1e6
        seed = self._state.reindex(aircraft)
        s_fid = seed["flight_id"].to_numpy(dtype=object)[group]
        s_last = seed["last"].to_numpy(dtype=float)[group]
        s_known = texts.get_indexer(pd.Index(seed["known"].to_numpy(dtype=object))).astype(float)
        s_known = np.where(seed["known"].notna().to_numpy(), s_known, np.nan)[group]
        s_in_run = seed["in_run"].eq(True).to_numpy()[group]
        s_run_start = seed["run_start"].to_numpy(dtype=float)[group]
        s_has = seed["has_start"].eq(True).to_numpy()[group]
        s_air = seed["air_since"].to_numpy(dtype=float)[group]
        first = np.ones(n, dtype=bool)
        first[1:] = group[1:] != group[:-1]
        nothing = np.full(n, np.nan)

        # Rule 1: gaps, against the latest time seen so far.
        latest = _cummax(micros, group) / 1e6
        prev_max = np.fmax(_shift(latest, first, nothing), s_last)
        gap = np.isnan(prev_max) | (t - prev_max > gap_s)
        seg_start = gap | first
        cont = (first & ~gap)[seg_start][np.cumsum(seg_start) - 1]  # carries the seed on

        # Rule 2: the callsign in force before each row (codes; NaN = none).
        own = np.where(callsign >= 0, callsign, np.nan)
        carried_over = first & cont & np.isnan(own)
        in_force = _ffill(np.where(carried_over, s_known, own), seg_start)
        before = _shift(in_force, seg_start, np.where(cont, s_known, np.nan))
        change = ~np.isnan(own) & ~np.isnan(before) & (own != before)

        # Rule 3: ground runs, their start and whether a flight started in them.
        ground_before = _shift(ground, first, np.isnan(s_air))
        air_mark = nothing.copy()
        new_stretch = ~ground & (gap | ground_before)
        air_mark[new_stretch] = t[new_stretch]
        carried = ~ground & first & ~gap & ~np.isnan(s_air)
        air_mark[carried] = s_air[carried]
        air_mark[ground] = -np.inf
        air_since = _ffill(air_mark, first)
        air_before = _shift(air_since, first, np.where(np.isnan(s_air), -np.inf, s_air))
        in_run_before = (_cumsum(ground, seg_start) - ground > 0) | (cont & s_in_run)
        new_run = ground & (
            gap | ~in_run_before | (np.isfinite(air_before) & (t - air_before >= flicker_s))
        )
        label_start = new_run | first
        label = np.cumsum(label_start) - 1
        at = np.flatnonzero(label_start)
        run_start = np.where(new_run[at], t[at], s_run_start[at])[label]
        seeded = (~new_run & cont & s_in_run & s_has)[at][label]
        by_rule_1_2 = gap | (~ground & change)
        trigger = ground & ~gap & (change | (t - run_start >= landed_s))
        landing = (
            trigger
            & (_cumsum(trigger, label_start) == 1)
            & (_cumsum(by_rule_1_2, label_start) == 0)
            & ~seeded
        )
        starts = by_rule_1_2 | landing

        # Ids: new at each start, carried forward otherwise.
        ids = np.full(n, None, dtype=object)
        for i in np.flatnonzero(starts):
            ids[i] = flight_id(aircraft[group[i]], int(micros[i] // 1_000_000))
        carry = first & ~starts
        ids[carry] = s_fid[carry]
        ids = ids[np.maximum.accumulate(np.where(ids != None, np.arange(n), 0))]  # noqa: E711

        # The state each aircraft is left in.
        end = np.flatnonzero(np.append(first[1:], True))
        in_run_after = in_run_before[end] | ground[end]
        has_after = seeded[end] | (_cumsum(starts, label_start)[end] > 0)
        update = pd.DataFrame(
            {
                "flight_id": ids[end],
                "last": np.fmax(latest[end], s_last[end]),
                "known": [None if np.isnan(k) else texts[int(k)] for k in in_force[end]],
                "in_run": in_run_after,
                "run_start": np.where(in_run_after, run_start[end], np.nan),
                "has_start": in_run_after & has_after,
                "air_since": np.where(ground[end], np.nan, air_since[end]),
            },
            index=pd.Index(aircraft, name="icao24"),
        )
        kept = self._state[~self._state.index.isin(update.index)]
        self._state = pd.concat([kept, update]) if len(kept) else update
        return ids
