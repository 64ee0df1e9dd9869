"""Where aircraft were when a day began: what the flight identifier resumes from."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

import pandas as pd
import psycopg

from pipelines.flights.identity import FlightIdentifier, FlightRule, state_from_points
from pipelines.warehouse.sqlfiles import load_sql

COLUMNS = (
    "icao24",
    "flight_id",
    "last_time",
    "callsign",
    "on_ground",
    "ground_since",
    "first_time",
)


def last_aircraft_points(conn: psycopg.Connection, day: date, gap: timedelta) -> pd.DataFrame:
    """Per aircraft seen in the `gap` before `day` began (UTC): its last stored point, the
    flight and callsign of that point and, when it was on the ground, the start of the
    flight's ground run and the flight's first time (`sql/ingest/last_aircraft_points.sql`)."""
    day_start = datetime.combine(day, time(), tzinfo=UTC)
    cur = conn.execute(
        load_sql("ingest/last_aircraft_points"),
        {"window_start": day_start - gap, "day_start": day_start},
    )
    return pd.DataFrame(cur.fetchall(), columns=list(COLUMNS))


@dataclass(frozen=True)
class CarriedState:
    """What a day's flight identification starts from, and its fingerprint: a day whose
    recorded fingerprint differs from the store's current one was identified from another
    state and is identified again (`pipelines/ingest.py`)."""

    points: pd.DataFrame
    fingerprint: str


def carried_state(conn: psycopg.Connection, day: date, rule: FlightRule) -> CarriedState:
    points = last_aircraft_points(conn, day, rule.gap)
    text = points.to_csv(index=False, date_format="%Y-%m-%dT%H:%M:%S.%fZ")
    return CarriedState(points, hashlib.sha256(text.encode()).hexdigest())


def day_identifier(conn: psycopg.Connection, day: date) -> tuple[FlightIdentifier, str]:
    """A flight identifier for `day`, under the configured rule, resuming from the store, and
    the fingerprint of the state it resumes from."""
    rule = FlightRule.from_settings()
    state = carried_state(conn, day, rule)
    return FlightIdentifier(rule, state_from_points(state.points)), state.fingerprint


def carried_fingerprint(conn: psycopg.Connection, day: date) -> str:
    """The fingerprint of the state `day` would resume from now."""
    return carried_state(conn, day, FlightRule.from_settings()).fingerprint
