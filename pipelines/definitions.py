"""The one Definitions object: every domain's assets, checks, jobs, schedules and sensors,
with the resources they share."""

from __future__ import annotations

import dagster as dg

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
    # Unset fields take the settings' values when a run starts (see resources.py).
    dg.Definitions(resources={"flight_store": FlightStore(), "landing": LandingZone()}),
)
