"""Dagster resources: typed handles to the flight store and the landing zone, configured from
the environment (`flights` sets working defaults for the local database)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import dagster as dg
import psycopg

from pipelines.warehouse.connection import connect


class FlightStore(dg.ConfigurableResource):
    """The TimescaleDB that holds flights (FLIGHTS_DATABASE_URL)."""

    database_url: str

    @contextmanager
    def connection(self, **kwargs: object) -> Iterator[psycopg.Connection]:
        with connect(self.database_url, **kwargs) as conn:
            yield conn


class LandingZone(dg.ConfigurableResource):
    """Where drops arrive: `<root>/<YYYY-MM-DD>/**` (FLIGHTS_LANDING_ROOT)."""

    root: str
    max_reject_rate: float = 0.05

    @property
    def path(self) -> Path:
        return Path(self.root).resolve()
