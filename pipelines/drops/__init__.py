"""Decoding of raw drops: one reader per format, all yielding the same columnar batches."""

from pipelines.drops.batches import DropBatch
from pipelines.drops.files import DropFile, discover_drops, read_drop
from pipelines.flights.records import Rejected

__all__ = ["DropBatch", "DropFile", "Rejected", "discover_drops", "read_drop"]
