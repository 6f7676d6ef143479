#!/usr/bin/env bash
# schemathesis-env.sh: create (or reuse) a Python virtualenv with
# schemathesis from PyPI, pinned, for fuzzing the scheduler's JSON API from
# its OpenAPI document (scripts/api-fuzz.sh, tests/tests/openapi_fuzz.rs).
#
# It is idempotent: a venv whose schemathesis is the pinned version is left
# as it is. The pin is one that pip installs on Python 3.11 (what CI has);
# schemathesis needs Python 3.10 or later.
#
# Needs: python3 (3.10+) with the venv module, pip, and access to PyPI.
# Usage: scripts/schemathesis-env.sh [VENV_DIR]
#        (default: <repo>/target/schemathesis-venv)
# Exit codes: 0 ready (last stdout line is the venv's schemathesis program);
#             1 python3, venv or pip missing, or python3 too old;
#             2 the install failed.
set -euo pipefail

version="4.32.5"
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="${1:-$repo/target/schemathesis-venv}"
python="$venv/bin/python"
program="$venv/bin/schemathesis"

if ! command -v python3 >/dev/null 2>&1; then
    echo "schemathesis-env: python3 is not installed" >&2
    exit 1
fi
if ! python3 -c 'import sys; sys.exit(sys.version_info < (3, 10))'; then
    echo "schemathesis-env: schemathesis $version needs Python 3.10 or later, python3 is $(python3 --version 2>&1)" >&2
    exit 1
fi
installed() {
    [[ -x "$program" ]] && [[ "$("$program" --version 2>/dev/null)" == *"$version"* ]]
}
if installed; then
    echo "$program"
    exit 0
fi
python3 -m venv "$venv" || { echo "schemathesis-env: cannot create $venv (python3 venv module)" >&2; exit 1; }
if ! "$python" -m pip --version >/dev/null 2>&1; then
    echo "schemathesis-env: pip is not available in $venv" >&2
    exit 1
fi
"$python" -m pip --disable-pip-version-check -q install "schemathesis==$version" \
    || { echo "schemathesis-env: installing schemathesis $version failed" >&2; exit 2; }
if ! installed; then
    echo "schemathesis-env: schemathesis $version does not run after installation" >&2
    exit 2
fi
echo "$program"
