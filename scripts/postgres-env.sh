#!/usr/bin/env bash
# postgres-env.sh: make sure PostgreSQL's server programs (initdb, postgres,
# pg_isready, psql) are installed, from Debian's `postgresql` package when
# they are missing, and print the directory that holds them. The tests'
# `drover_test_support::postgres::Postgres::start()` runs it, then starts a
# server of its own (initdb in a temporary directory, loopback only, a free
# port) and stops it when the test ends; nothing here starts a server.
#
# It is idempotent: with the programs present it installs nothing. An
# install that fails is retried once after `apt-get update`. Installing
# needs root (or sudo) and the Debian package registry; Debian's package may
# start its own cluster on port 5432, which the tests never use.
#
# Usage: scripts/postgres-env.sh
# Exit codes: 0 ready (the last stdout line is the bin directory);
#             1 not installed and cannot install (not root, no apt-get);
#             2 the install failed.
set -euo pipefail

bindir() {
    local dir
    for dir in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V -r); do
        if [[ -x "$dir/initdb" && -x "$dir/postgres" && -x "$dir/pg_isready" ]]; then
            echo "$dir"
            return 0
        fi
    done
    if command -v pg_config >/dev/null 2>&1; then
        dir="$(pg_config --bindir)"
        if [[ -x "$dir/initdb" && -x "$dir/postgres" ]]; then
            echo "$dir"
            return 0
        fi
    fi
    return 1
}

if dir="$(bindir)"; then
    echo "$dir"
    exit 0
fi

if ! command -v apt-get >/dev/null 2>&1; then
    echo "postgres-env: PostgreSQL is not installed and apt-get is not available" >&2
    exit 1
fi
sudo=()
if [[ "$(id -u)" != 0 ]]; then
    if ! command -v sudo >/dev/null 2>&1; then
        echo "postgres-env: PostgreSQL is not installed; installing it needs root" >&2
        exit 1
    fi
    sudo=(sudo)
fi
install() {
    DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -q postgresql >&2
}
if ! install; then
    "${sudo[@]}" apt-get update -q >&2 || true
    install || { echo "postgres-env: installing postgresql failed" >&2; exit 2; }
fi
if ! dir="$(bindir)"; then
    echo "postgres-env: postgresql is installed but its server programs are not found" >&2
    exit 2
fi
echo "$dir"
