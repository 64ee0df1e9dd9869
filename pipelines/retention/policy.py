"""Settings of the aggregates and the cleaner, from the settings module (read when asked for).

FLIGHTS_RAW_RETENTION_DAYS         days of raw points kept (90)
FLIGHTS_AGGREGATE_RETENTION_DAYS   days of aggregates kept (730); at least the raw retention
FLIGHTS_QUARANTINE_RETENTION_DAYS  days of quarantined rows kept, by partition day (30)
FLIGHTS_RAW_RETENTION_FLOOR_DAYS   the shortest raw retention the cleaner accepts (7)
FLIGHTS_COMPRESS_AFTER_DAYS        licensed edition: raw days older than this are compressed
                                   by the cleaner (7)
FLIGHTS_REALTIME_AGGREGATES        on/off: real-time aggregation on the licensed edition (off,
                                   so that both editions show only refreshed aggregates)
FLIGHTS_LANDING_RETENTION          keep / archive / delete the landing folders of loaded
                                   partitions past the raw retention (keep)
FLIGHTS_LANDING_ARCHIVE_DIR        where archived folders go (<landing root>-archive)
"""

from __future__ import annotations

from pathlib import Path

from pipelines import settings
from pipelines.settings import LandingPolicy
from pipelines.warehouse.retention import RetentionPolicy


def retention_policy(
    *,
    raw_days: int | None = None,
    aggregate_days: int | None = None,
    quarantine_days: int | None = None,
) -> RetentionPolicy:
    """The configured policy, with any value given here taking precedence (never the floor)."""
    configured = settings.load()
    return RetentionPolicy(
        raw_days=configured.raw_retention_days if raw_days is None else raw_days,
        aggregate_days=configured.aggregate_retention_days
        if aggregate_days is None
        else aggregate_days,
        quarantine_days=configured.quarantine_retention_days
        if quarantine_days is None
        else quarantine_days,
        raw_floor_days=configured.raw_retention_floor_days,
        compress_after_days=configured.compress_after_days,
    )


def realtime_aggregates() -> bool:
    return settings.load().realtime_aggregates


def landing_retention() -> LandingPolicy:
    return settings.load().landing_retention


def landing_archive_dir(landing_root: Path) -> Path:
    """Where archived day folders go: outside the landing root (resolved), where archiving
    would move a day into itself or within the zone the sensor reads."""
    name = settings.env_name("landing_archive_dir")
    configured = settings.load().landing_archive_dir
    archive = settings.configured_path(
        configured or landing_root.with_name(f"{landing_root.name}-archive"), name
    )
    if archive.is_relative_to(landing_root):
        raise settings.SettingsError(
            f"{name} ({archive}) lies in the landing root ({landing_root}); set it outside"
        )
    return archive
