"""The landing-zone sensor: a run for each day whose files are new or changed.

A day's fingerprint (its files' names, sizes, modification times) is compared with the
fingerprints the ledger recorded for the day's loads (published or held), so even the first
tick requests nothing for a day already loaded from the same files. The cursor keeps what was
requested, so a day is not requested again while its run is under way. A folder without a
drop yet (just created, files still being written, only links into other days) waits: a run
would have nothing to load and fail.
"""

import json
from datetime import date

import dagster as dg

from pipelines.assets.ingest import ingest_job
from pipelines.assets.partitions import DAILY
from pipelines.assets.resources import FlightStore, LandingZone
from pipelines.drops.files import discover_drops, partition_fingerprint
from pipelines.warehouse.ingest_checks import known_fingerprints


def _day(name: str) -> date | None:
    try:
        return date.fromisoformat(name)
    except ValueError:
        return None


@dg.sensor(
    job=ingest_job,
    minimum_interval_seconds=60,
    description="Requests an ingest run for every landing-zone day whose files are "
    "new or changed since the last request. Off until an operator turns "
    "it on (UI, Automation), like the daily schedule.",
)
def landing_zone_sensor(
    context: dg.SensorEvaluationContext, landing: LandingZone, flight_store: FlightStore
) -> dg.SensorResult:
    seen: dict[str, str] = json.loads(context.cursor) if context.cursor else {}
    with flight_store.connection() as conn:
        loaded = known_fingerprints(conn)
    valid = set(DAILY.get_partition_keys())
    requests, skipped, waiting = [], [], []
    root = landing.path
    folders = sorted(p for p in root.iterdir() if p.is_dir()) if root.is_dir() else []
    for folder in folders:
        day = _day(folder.name)
        if day is None or folder.name not in valid:
            skipped.append(folder.name)
            continue
        drops = discover_drops(root, day)
        if not drops:
            waiting.append(folder.name)
            continue
        fingerprint = partition_fingerprint(drops)
        if seen.get(folder.name) == fingerprint or fingerprint in loaded.get(day, set()):
            continue
        seen[folder.name] = fingerprint
        requests.append(
            dg.RunRequest(partition_key=folder.name, run_key=f"{folder.name}:{fingerprint}")
        )
    if skipped:
        context.log.warning(f"ignored folders that are not a partition day: {skipped[:10]}")
    if waiting:
        context.log.info(f"day folders without a drop yet: {waiting[:10]}")
    return dg.SensorResult(run_requests=requests, cursor=json.dumps(seen, sort_keys=True))


defs = dg.Definitions(sensors=[landing_zone_sensor])
