#!/usr/bin/env bash
# kfp-env.sh: create (or reuse) a Python virtualenv with the Kubeflow
# Pipelines v1 clients from PyPI, pinned: the `kfp` 1.8.24 SDK (its v1
# compiler writes Argo Workflows) and `kfp-server-api` 1.8.5 (the generated
# v1beta1 REST client). For the pipeline tests (scheduler/tests/
# pipeline_manifests.rs compiles the SDK pipelines in
# scheduler/tests/fixtures/kfp/ with it) and for trying kfp by hand.
#
# Why these pins: 1.8.24 is the newest kfp 1.8.x and 1.8.5 the newest
# kfp-server-api 1.8.x. kfp 1.8.24 pins its own protobuf (6.33.5, which has
# wheels for Python 3.11) and no longer needs kfp-pipeline-spec, so a fresh
# `pip install` of the two pins resolves on Python 3.11 with no further
# pins. (kfp 1.8.22 also installs, but an upgrade of its venv to 1.8.24
# leaves kfp-pipeline-spec 0.1.16 behind, which wants protobuf < 4: that is
# why a venv at another version is made anew, never upgraded in place.)
#
# It is idempotent: a venv whose kfp and kfp-server-api are the pinned
# versions and import (with the compiler) is left as it is.
#
# Needs: python3 (3.8+) with the venv module, pip, and access to PyPI.
# Usage: scripts/kfp-env.sh [VENV_DIR]   (default: <repo>/target/kfp-venv)
# Exit codes: 0 ready (last stdout line is the venv's python);
#             1 python3, venv or pip missing, or VENV_DIR is not a venv;
#             2 the install failed.
set -euo pipefail

kfp_version="1.8.24"
server_api_version="1.8.5"
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="${1:-$repo/target/kfp-venv}"
python="$venv/bin/python"

if ! command -v python3 >/dev/null 2>&1; then
    echo "kfp-env: python3 is not installed" >&2
    exit 1
fi

# The check imports what the tests use (the v1 compiler, the DSL, the
# client) and compares both versions with the pins.
check="import kfp, kfp.compiler, kfp.dsl, kfp_server_api, sys
sys.exit(0 if (kfp.__version__, kfp_server_api.__version__) == ('$kfp_version', '$server_api_version') else 3)"
ready() {
    [[ -x "$python" ]] && "$python" -c "$check" >/dev/null 2>&1
}
if ready; then
    echo "$python"
    exit 0
fi

if ! python3 -m venv --help >/dev/null 2>&1; then
    echo "kfp-env: python3 has no venv module" >&2
    exit 1
fi
# A venv at other versions (or half installed) is made anew: upgrading in
# place can keep packages the new pins no longer want (see above).
if [[ -e "$venv" && ! -f "$venv/pyvenv.cfg" ]]; then
    echo "kfp-env: $venv exists and is not a virtualenv; not touching it" >&2
    exit 1
fi
rm -rf "$venv"
python3 -m venv "$venv" || { echo "kfp-env: cannot create $venv" >&2; exit 1; }
if ! "$python" -m pip --version >/dev/null 2>&1; then
    echo "kfp-env: pip is not available in $venv" >&2
    exit 1
fi

"$python" -m pip --disable-pip-version-check -q install \
    "kfp==$kfp_version" "kfp-server-api==$server_api_version" \
    || { echo "kfp-env: installing kfp $kfp_version and kfp-server-api $server_api_version failed" >&2; exit 2; }

if ! ready; then
    echo "kfp-env: kfp $kfp_version or kfp-server-api $server_api_version does not import after installation" >&2
    exit 2
fi
echo "$python"
