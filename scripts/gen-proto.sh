#!/usr/bin/env bash
# Regenerates pipelines/proto/*_pb2*.py with the locked grpcio-tools (code from a newer one
# fails to import against the locked protobuf runtime).
set -euo pipefail
cd "$(dirname "$0")/.."
.venv/bin/python -m grpc_tools.protoc -I . --python_out=. --pyi_out=. --grpc_python_out=. \
    pipelines/proto/flight.proto
