"""The flight.proto contract and the Python code generated from it (grpcio-tools)."""
