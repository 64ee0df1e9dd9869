"""The one Definitions object: every asset, check, job, schedule, sensor and resource."""

from __future__ import annotations

import dagster as dg

from pipelines.resources import FlightStore

defs = dg.Definitions(
    resources={"flight_store": FlightStore(database_url=dg.EnvVar("FLIGHTS_DATABASE_URL"))},
)
