"""Flights: what a position report is, and cutting an aircraft's positions into flights."""
