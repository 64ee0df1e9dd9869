"""The partitioning every daily asset and job shares: one partition per landing-zone day."""

from __future__ import annotations

import dagster as dg

from pipelines import settings

# The first drop day the UI offers for backfills (FLIGHTS_START_DATE, for older archives).
# Read when the definitions load, since partitions are part of the definitions themselves: a
# changed start date shows after "Reload definitions" in the UI, without a restart.
START_DATE = settings.start_date().isoformat()

DAILY = dg.DailyPartitionsDefinition(start_date=START_DATE, timezone="UTC")
