"""The partitioning every daily asset and job shares: one partition per landing-zone day."""

from __future__ import annotations

import os

import dagster as dg

# The first drop day the UI offers for backfills; set FLIGHTS_START_DATE for older archives.
# Read when the definitions load, since partitions are part of the definitions themselves.
START_DATE = os.environ.get("FLIGHTS_START_DATE", "2018-01-01")

DAILY = dg.DailyPartitionsDefinition(start_date=START_DATE, timezone="UTC")
