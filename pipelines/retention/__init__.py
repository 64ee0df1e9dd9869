"""Retention: how long raw points, aggregates and landing files are kept, and pruning."""
