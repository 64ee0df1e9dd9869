"""The one Definitions object: every domain's assets, checks, jobs, schedules and sensors,
with the resources they share."""

from __future__ import annotations

import dagster as dg

from pipelines.resources import FlightStore

# Each domain module exposes a small `defs`; this is the only place that joins them.
DOMAINS: list[dg.Definitions] = []

defs = dg.Definitions.merge(
    *DOMAINS,
    dg.Definitions(
        resources={"flight_store": FlightStore(database_url=dg.EnvVar("FLIGHTS_DATABASE_URL"))},
    ),
)
