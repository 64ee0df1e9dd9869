"""The one Definitions object: every domain's assets, checks, jobs, schedules and sensors,
with the resources they share."""

from __future__ import annotations

import dagster as dg

from pipelines import settings
from pipelines.assets import aggregates, cleaner, ingest, landing_sensor, review
from pipelines.assets.resources import FlightStore, LandingZone

# Each domain module exposes a small `defs`; this is the only place that joins them.
DOMAINS: list[dg.Definitions] = [
    ingest.defs,
    landing_sensor.defs,
    aggregates.defs,
    cleaner.defs,
    review.defs,
]

defs = dg.Definitions.merge(
    *DOMAINS,
    dg.Definitions(
        resources={
            "flight_store": FlightStore(database_url=dg.EnvVar("FLIGHTS_DATABASE_URL")),
            "landing": LandingZone(
                root=dg.EnvVar("FLIGHTS_LANDING_ROOT"), max_reject_rate=settings.max_reject_rate()
            ),
        },
    ),
)
