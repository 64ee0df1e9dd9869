#!/usr/bin/env bash
# Builds TimescaleDB (Apache edition) for PostgreSQL 15 from Debian's source package.
# Debian 12 ships PostgreSQL 15 but not TimescaleDB; trixie's source package builds cleanly
# against it. Idempotent: does nothing when the extension is already installed.
set -euo pipefail

PG_CONFIG=${PG_CONFIG:-/usr/lib/postgresql/15/bin/pg_config}
if [ -x "$PG_CONFIG" ] && [ -f "$("$PG_CONFIG" --sharedir)/extension/timescaledb.control" ]; then
    echo "timescaledb: already installed"
    exit 0
fi
if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null; then
    echo "timescaledb is not installed and cannot be built here (needs root and apt-get)." >&2
    echo "Point FLIGHTS_DATABASE_URL at any TimescaleDB server instead, e.g. the official" >&2
    echo "timescale/timescaledb container image." >&2
    exit 3
fi

export DEBIAN_FRONTEND=noninteractive
src_list=/etc/apt/sources.list.d/flights-timescaledb-src.sources
if [ ! -f "$src_list" ]; then
    uri=$(awk '/^URIs:/ {print $2; exit}' /etc/apt/sources.list.d/debian.sources 2>/dev/null || true)
    cat >"$src_list" <<SRC
Types: deb-src
URIs: ${uri:-http://deb.debian.org/debian}
Suites: trixie
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC
fi
apt-get update -qq
apt-get install -y -qq --no-install-recommends postgresql-server-dev-15 cmake libssl-dev dpkg-dev >/dev/null

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"
apt-get source -qq timescaledb >/dev/null 2>&1
cd timescaledb-*/
./bootstrap -DREGRESS_CHECKS=OFF -DAPACHE_ONLY=ON -DUSE_TELEMETRY=OFF -DPG_CONFIG="$PG_CONFIG" >/dev/null
make -C build -j"$(nproc)" >/dev/null
make -C build install >/dev/null
echo "timescaledb: installed $(basename "$PWD")"
