"""The thin Dagster layer: assets, checks, jobs, schedules and sensors over the plain modules."""

import warnings

import dagster as dg

# Checks attached to a day's partition are a preview feature of Dagster 1.13 that this project
# relies on knowingly; its notice would print on every command and in every UI process.
warnings.filterwarnings(
    "ignore",
    message="Specifying a partitions_def on an AssetCheckSpec",
    category=dg.PreviewWarning,
)
