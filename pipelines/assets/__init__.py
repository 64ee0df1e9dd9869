"""The thin Dagster layer: assets, checks, jobs, schedules and sensors over the plain modules."""

import warnings

import dagster as dg

# Partitioned asset checks are a Dagster preview; their warning (and superseded-API notices)
# would print a library file path on every operator's command and every UI start.
warnings.filterwarnings("ignore", category=dg.PreviewWarning)
warnings.filterwarnings("ignore", category=dg.SupersessionWarning)
