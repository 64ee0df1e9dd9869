#!/usr/bin/env bash
# Installs everything the project needs on a fresh machine: uv, the locked Python
# environment, and (with --with-test-server) the npm packages of the licensed-edition test
# server. TimescaleDB itself is built on first `flights db up`.
set -euo pipefail
cd "$(dirname "$0")/.."
export UV_PYTHON_DOWNLOADS=never

# `python3 -m uv` works whether or not pip's script folder is on PATH.
if ! python3 -m uv --version >/dev/null 2>&1; then
    python3 -m pip install --quiet --disable-pip-version-check uv
fi
# Bytecode compiled once here: every `flights` call would otherwise compile Dagster's
# modules again wherever the interpreter may not write its caches (PYTHONDONTWRITEBYTECODE),
# several seconds per call.
python3 -m uv sync --locked --quiet --compile-bytecode

if [ "${1:-}" = "--with-test-server" ]; then
    if [ ! -d node_modules/@electric-sql/pglite ] || [ package-lock.json -nt node_modules ]; then
        npm ci --no-audit --no-fund --loglevel=error
    fi
fi
