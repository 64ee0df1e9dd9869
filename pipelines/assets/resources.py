"""Dagster resources: typed handles to the flight store and the landing zone.

Each field is an override for one run (the launchpad's resource config); a field left unset
takes the setting's value when the run starts, so an edited settings file applies to the next
run without restarting the UI or the daemon.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import dagster as dg
import psycopg
from pydantic import Field

from pipelines import settings
from pipelines.warehouse.connection import connect


class FlightStore(dg.ConfigurableResource["FlightStore"]):
    """The TimescaleDB that holds flights (FLIGHTS_DATABASE_URL)."""

    database_url: str | None = Field(
        default=None, description="Unset: FLIGHTS_DATABASE_URL's value."
    )

    @property
    def url(self) -> str:
        return self.database_url or settings.database_url()

    @contextmanager
    def connection(self, **kwargs: object) -> Iterator[psycopg.Connection]:
        with connect(self.url, **kwargs) as conn:
            yield conn


class LandingZone(dg.ConfigurableResource["LandingZone"]):
    """Where drops arrive: `<root>/<YYYY-MM-DD>/**` (FLIGHTS_LANDING_ROOT)."""

    root: str | None = Field(default=None, description="Unset: FLIGHTS_LANDING_ROOT's value.")
    max_reject_rate: float | None = Field(
        default=None, ge=0, le=1, description="Unset: FLIGHTS_MAX_REJECT_RATE's value."
    )

    @property
    def path(self) -> Path:
        if self.root:
            return settings.configured_path(Path(self.root), "the landing resource's root")
        return settings.landing_root()

    @property
    def reject_threshold(self) -> float:
        """The share of quarantined rows above which the day's blocking check fails."""
        return settings.max_reject_rate() if self.max_reject_rate is None else self.max_reject_rate
