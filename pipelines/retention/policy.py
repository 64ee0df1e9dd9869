"""Settings of the aggregates and the cleaner, from the environment (read when asked for).

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

import os
from pathlib import Path

from pipelines.retention.landing import LANDING_POLICIES, LandingPolicy
from pipelines.warehouse.retention import RetentionPolicy

_TRUE = {"1", "on", "true", "yes"}
_FALSE = {"0", "off", "false", "no", ""}


def _days(name: str, default: int) -> int:
    value = os.environ.get(name, "").strip()
    if not value:
        return default
    if not value.isdigit():
        raise ValueError(f"{name} must be a whole number of days, not {value!r}")
    return int(value)


def retention_policy(
    *,
    raw_days: int | None = None,
    aggregate_days: int | None = None,
    quarantine_days: int | None = None,
) -> RetentionPolicy:
    """The configured policy, with any value given here taking precedence (never the floor)."""
    return RetentionPolicy(
        raw_days=raw_days if raw_days is not None else _days("FLIGHTS_RAW_RETENTION_DAYS", 90),
        aggregate_days=aggregate_days
        if aggregate_days is not None
        else _days("FLIGHTS_AGGREGATE_RETENTION_DAYS", 730),
        quarantine_days=quarantine_days
        if quarantine_days is not None
        else _days("FLIGHTS_QUARANTINE_RETENTION_DAYS", 30),
        raw_floor_days=_days("FLIGHTS_RAW_RETENTION_FLOOR_DAYS", 7),
        compress_after_days=_days("FLIGHTS_COMPRESS_AFTER_DAYS", 7),
    )


def realtime_aggregates() -> bool:
    value = os.environ.get("FLIGHTS_REALTIME_AGGREGATES", "off").strip().lower()
    if value not in _TRUE | _FALSE:
        raise ValueError(f"FLIGHTS_REALTIME_AGGREGATES must be on or off, not {value!r}")
    return value in _TRUE


def landing_retention() -> LandingPolicy:
    value = os.environ.get("FLIGHTS_LANDING_RETENTION", "keep").strip().lower()
    for policy in LANDING_POLICIES:
        if value == policy:
            return policy
    raise ValueError(f"FLIGHTS_LANDING_RETENTION must be one of {', '.join(LANDING_POLICIES)}")


def landing_archive_dir(landing_root: Path) -> Path:
    default = landing_root.with_name(f"{landing_root.name}-archive")
    return Path(os.environ.get("FLIGHTS_LANDING_ARCHIVE_DIR") or default).resolve()
