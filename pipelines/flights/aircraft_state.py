"""Where aircraft were when a day began: what the flight identifier resumes from."""

from __future__ import annotations

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


def day_identifier(conn: psycopg.Connection, day: date) -> FlightIdentifier:
    """A flight identifier for `day`, under the configured rule, resuming from the store."""
    rule = FlightRule.from_settings()
    return FlightIdentifier(rule, state_from_points(last_aircraft_points(conn, day, rule.gap)))
