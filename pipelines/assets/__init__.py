"""The thin Dagster layer: assets, checks, jobs, schedules and sensors over the plain modules."""
