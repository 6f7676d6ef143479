#!/usr/bin/env bash
# pymesos-env.sh: create (or reuse) a Python virtualenv with pymesos 0.3.15
# from PyPI, for the pymesos tests in drover-tests (tests/), the pymesos
# peer of drover-bench, and for trying pymesos by hand.
#
# What it does:
#   - creates target/pymesos-venv (workspace root) with `python3 -m venv`;
#   - installs pymesos==0.3.15 and its pure-Python dependencies with
#     `pip install --no-deps pymesos==0.3.15 six addict`, because pymesos'
#     dependency http-parser 0.9.0 ships only an sdist whose C extension
#     does not build on Python >= 3.11;
#   - downloads the http-parser 0.9.0 sdist and copies its pure-Python
#     `http_parser` package (the *.py files) into the venv's site-packages;
#     `http_parser.http` falls back to `http_parser.pyparser` on its own;
#   - checks that `import pymesos` works and prints the venv's python path.
# It is idempotent: a venv that already imports pymesos is left as it is.
#
# Needs: python3 (3.8+) with the venv module, pip, and network access to PyPI.
# Usage: scripts/pymesos-env.sh [VENV_DIR]   (default: <repo>/target/pymesos-venv)
# Exit codes: 0 ready (last stdout line is the venv's python);
#             1 python3, venv or pip missing; 2 a download or install failed.
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="${1:-$repo/target/pymesos-venv}"
python="$venv/bin/python"

if ! command -v python3 >/dev/null 2>&1; then
    echo "pymesos-env: python3 is not installed" >&2
    exit 1
fi

if [[ -x "$python" ]] && "$python" -c 'import pymesos, http_parser.http' >/dev/null 2>&1; then
    echo "$python"
    exit 0
fi

if ! python3 -m venv --help >/dev/null 2>&1; then
    echo "pymesos-env: python3 has no venv module" >&2
    exit 1
fi
python3 -m venv "$venv" || { echo "pymesos-env: cannot create $venv" >&2; exit 1; }
if ! "$python" -m pip --version >/dev/null 2>&1; then
    echo "pymesos-env: pip is not available in $venv" >&2
    exit 1
fi

pip_quiet=(-m pip --disable-pip-version-check -q)
"$python" "${pip_quiet[@]}" install --no-deps pymesos==0.3.15 six addict \
    || { echo "pymesos-env: installing pymesos failed" >&2; exit 2; }

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
"$python" "${pip_quiet[@]}" download --no-deps --no-binary :all: --no-build-isolation \
    -d "$work" http-parser==0.9.0 >/dev/null 2>&1 \
    || "$python" "${pip_quiet[@]}" download --no-deps --no-binary :all: -d "$work" http-parser==0.9.0 \
    || { echo "pymesos-env: downloading the http-parser sdist failed" >&2; exit 2; }
tar -xzf "$work"/http-parser-0.9.0.tar.gz -C "$work" \
    || { echo "pymesos-env: unpacking http-parser failed" >&2; exit 2; }
site="$("$python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
mkdir -p "$site/http_parser"
cp "$work"/http-parser-0.9.0/http_parser/*.py "$site/http_parser/"

if ! "$python" -c 'import pymesos, http_parser.http' >/dev/null 2>&1; then
    echo "pymesos-env: pymesos does not import after installation" >&2
    exit 2
fi
echo "$python"
