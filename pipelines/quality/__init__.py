"""Validation of decoded batches: the Pandera schema, reject reasons, what goes to quarantine."""
