"""Raw days in TimescaleDB's columnstore (compression), on the licensed edition.

A day's chunk of `flight_data` is compressed once it is older than the configured age
(FLIGHTS_COMPRESS_AFTER_DAYS), by the cleaner's run, segmented by flight and ordered by time
(sql/migrations/008_columnstore.timescale.sql). A late drop or a re-run that upserts into a
compressed day decompresses the segments it touches; the ingest then compresses that chunk
again, so a compressed day stays compressed. The Apache edition refuses compression: there
every function here does nothing.
"""

from __future__ import annotations

from datetime import datetime

import psycopg

from pipelines.warehouse.aggregates import Window
from pipelines.warehouse.editions import edition
from pipelines.warehouse.sqlfiles import load_sql

UncompressedChunk = tuple[str, datetime, datetime, int]  # name, range start, end, bytes


def uncompressed_chunks(conn: psycopg.Connection, window: Window) -> list[UncompressedChunk]:
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
