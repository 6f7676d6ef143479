#!/usr/bin/env bash
# grpc-env.sh: create (or reuse) a Python virtualenv with grpcio and
# grpcio-tools from PyPI, for the README's gRPC example
# (examples/grpc/peloton_create_job.py) and the test that runs it.
#
# It is idempotent: a venv that already imports grpc and grpc_tools is left
# as it is. The example compiles the seed protos (seed-api/proto) with
# grpcio-tools' own protoc when it runs, so nothing generated is kept.
#
# Needs: python3 (3.8+) with the venv module, pip, and network access to PyPI.
# Usage: scripts/grpc-env.sh [VENV_DIR]   (default: <repo>/target/grpc-venv)
# Exit codes: 0 ready (last stdout line is the venv's python);
#             1 python3, venv or pip missing; 2 the install failed.
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="${1:-$repo/target/grpc-venv}"
python="$venv/bin/python"

if ! command -v python3 >/dev/null 2>&1; then
    echo "grpc-env: python3 is not installed" >&2
    exit 1
fi
if [[ -x "$python" ]] && "$python" -c 'import grpc, grpc_tools' >/dev/null 2>&1; then
    echo "$python"
    exit 0
fi
python3 -m venv "$venv" || { echo "grpc-env: cannot create $venv (python3 venv module)" >&2; exit 1; }
if ! "$python" -m pip --version >/dev/null 2>&1; then
    echo "grpc-env: pip is not available in $venv" >&2
    exit 1
fi
"$python" -m pip --disable-pip-version-check -q install 'grpcio>=1.60' 'grpcio-tools>=1.60' \
    || { echo "grpc-env: installing grpcio and grpcio-tools failed" >&2; exit 2; }
if ! "$python" -c 'import grpc, grpc_tools' >/dev/null 2>&1; then
    echo "grpc-env: grpc does not import after installation" >&2
    exit 2
fi
echo "$python"
