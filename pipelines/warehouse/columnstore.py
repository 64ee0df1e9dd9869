"""Raw days past the compression age, made small: compressed on the licensed edition,
their indexes rebuilt compact on the Apache edition.

Licensed edition: a day's chunk of `flight_data` is compressed once it is older than the
configured age (FLIGHTS_COMPRESS_AFTER_DAYS), by the cleaner's run, segmented by flight and
ordered by time (sql/migrations/008_columnstore.timescale.sql). A late drop or a re-run that
upserts into a compressed day decompresses the segments it touches; the ingest then
compresses that chunk again, so a compressed day stays compressed.

Apache edition (no columnstore): at the same age the cleaner rebuilds the chunk's indexes
without blocking reads or writes; drops in time order leave the primary key's pages about half
full (migration 013). A chunk is rebuilt again only when rewrites grew its indexes since.
"""

from __future__ import annotations

from datetime import datetime

import psycopg
from psycopg import sql

from pipelines.warehouse.aggregates import Window, require_autocommit
from pipelines.warehouse.editions import edition
from pipelines.warehouse.sqlfiles import load_sql

RawChunk = tuple[str, datetime, datetime, int]  # name, range start, end, bytes
# How much a compacted chunk's indexes may grow (late drops) before it is rebuilt again.
COMPACT_AGAIN_AFTER_GROWTH = 0.2


def uncompressed_chunks(conn: psycopg.Connection, window: Window) -> list[RawChunk]:
    """The chunks not compressed yet that end inside `window` (end after its start, at or
    before its end): none on the Apache edition."""
    if edition(conn) != "timescale":
        return []
    rows = conn.execute(
        load_sql("columnstore/uncompressed_chunks"), {"after": window.start, "before": window.end}
    )
    return [(name, start, end, size) for name, start, end, size in rows]


def compress_chunk(conn: psycopg.Connection, chunk: str) -> None:
    conn.execute(load_sql("columnstore/compress_chunk"), {"chunk": chunk})


def recompress_window(conn: psycopg.Connection, window: Window) -> list[str]:
    """Compress again the compressed chunks a load wrote into; returns their names."""
    if edition(conn) != "timescale":
        return []
    chunks = [
        row[0]
        for row in conn.execute(
            load_sql("columnstore/compressed_chunks_overlapping"),
            {"start": window.start, "end": window.end},
        )
    ]
    for chunk in chunks:
        compress_chunk(conn, chunk)
    return chunks


def uncompacted_chunks(conn: psycopg.Connection, window: Window) -> list[RawChunk]:
    """Apache edition: the chunks ending inside `window` whose indexes were never rebuilt,
    or grew by more than COMPACT_AGAIN_AFTER_GROWTH since; none on the licensed edition."""
    if edition(conn) != "apache":
        return []
    rows = conn.execute(
        load_sql("columnstore/uncompacted_chunks"),
        {"after": window.start, "before": window.end, "growth": COMPACT_AGAIN_AFTER_GROWTH},
    )
    return [(name, start, end, size) for name, start, end, size in rows]


def compact_chunk(conn: psycopg.Connection, chunk: str) -> None:
    """Rebuild the chunk's indexes (a qualified name, as `uncompacted_chunks` gives it), after
    dropping what an interrupted rebuild left; REINDEX CONCURRENTLY needs autocommit."""
    require_autocommit(conn)
    abandoned = conn.execute(load_sql("columnstore/abandoned_rebuilds"), {"chunk": chunk})
    for schema, index in abandoned.fetchall():
        conn.execute(
            load_sql("columnstore/drop_abandoned_rebuild").format(
                index=sql.Identifier(schema, index)
            )
        )
    row = conn.execute(load_sql("columnstore/relation_name"), {"relation": chunk}).fetchone()
    assert row is not None
    conn.execute(load_sql("columnstore/compact_chunk").format(chunk=sql.Identifier(*row)))
    conn.execute(load_sql("columnstore/record_compacted"), {"chunk": chunk})
