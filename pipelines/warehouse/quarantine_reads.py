"""Quarantined rows for an operator's review: the rows themselves and a summary by reason."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import date

import psycopg
from psycopg import sql

from pipelines.ingest import reason_kind
from pipelines.warehouse.sqlfiles import load_sql


@dataclass(frozen=True)
class QuarantineFilter:
    """Which rejects to show; None means any."""

    day: date | None = None
    reason: str | None = None
    file: str | None = None

    def params(self) -> dict[str, object]:
        return {"day": self.day, "reason": self.reason, "file": self.file}

    @staticmethod
    def statement(name: str) -> sql.Composed:
        """A review statement (`sql/review/<name>.sql`) over the rows this filter matches."""
        return load_sql(f"review/{name}").format(matching=load_sql("review/quarantine_matching"))


@dataclass(frozen=True)
class QuarantinedRow:
    day: date
    held: bool
    source_file: str
    line: int | None
    byte_offset: int | None
    reason: str
    raw_record: str | None


def quarantined_rows(
    conn: psycopg.Connection, which: QuarantineFilter, limit: int
) -> list[QuarantinedRow]:
    rows = conn.execute(which.statement("quarantine_rows"), {**which.params(), "limit": limit})
    return [QuarantinedRow(*row) for row in rows.fetchall()]


def reasons_by_day(
    conn: psycopg.Connection, which: QuarantineFilter
) -> dict[tuple[date, bool], Counter[str]]:
    """Rejects per (day, held) by kind of reason: the numbers of the ingest's reject_reasons."""
    summary: dict[tuple[date, bool], Counter[str]] = {}
    for day, held, reason, n in conn.execute(which.statement("quarantine_reasons"), which.params()):
        summary.setdefault((day, held), Counter())[reason_kind(reason)] += n
    return summary
