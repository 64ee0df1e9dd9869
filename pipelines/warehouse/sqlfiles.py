"""SQL lives in `sql/*.sql`; this loads it by name."""

from __future__ import annotations

from functools import cache

from psycopg import sql

from pipelines.settings import SQL_DIR


@cache
def load_sql(name: str) -> sql.SQL:
    """The statement in `sql/<name>.sql`, as a composable template (placeholders stay `%s`)."""
    return sql.SQL((SQL_DIR / f"{name}.sql").read_text())
