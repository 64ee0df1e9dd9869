"""Dagster resources: typed handles to the flight store, configured from the environment."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

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
