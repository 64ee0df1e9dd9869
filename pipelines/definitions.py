"""The one Definitions object: every domain's assets, checks, jobs, schedules and sensors,
with the resources they share."""

from __future__ import annotations

import dagster as dg

from pipelines.assets import aggregates, cleaner, ingest, landing_sensor, review, runs
from pipelines.assets.resources import FlightStore, LandingZone

# Each domain module exposes a small `defs`; this is the only place that joins them.
DOMAINS: list[dg.Definitions] = [
    ingest.defs,
    landing_sensor.defs,
    aggregates.defs,
    cleaner.defs,
    runs.defs,
    review.defs,
]

defs = dg.Definitions.merge(
    *DOMAINS,
    dg.Definitions(
        # Every job runs its few short steps in one process that leaves a liveness record.
        executor=runs.in_process_with_liveness,
        # Unset fields take the settings' values when a run starts (see resources.py).
        resources={"flight_store": FlightStore(), "landing": LandingZone()},
    ),
)
