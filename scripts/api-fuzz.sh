#!/usr/bin/env bash
# api-fuzz.sh: fuzz a running scheduler's JSON API from its own OpenAPI
# document (GET /api/v1/openapi.json) with schemathesis, installed by
# scripts/schemathesis-env.sh. Fails on any 5xx, and on any answer whose
# status, content type or body the document does not describe.
#
# Usage: scripts/api-fuzz.sh ADDRESS [SCHEMATHESIS RUN OPTIONS...]
#   ADDRESS   the scheduler's API, host:port (http) or a base URL
#   options   passed to `schemathesis run` after the defaults below, e.g.
#             -H 'Authorization: Bearer TOKEN' (an authenticated run),
#             -n 50 (more examples), --seed 7 (a run again).
# Environment:
#   API_FUZZ_CONFIG    a schemathesis.toml (e.g. known job ids and pod
#                      names for the path parameters, so requests reach
#                      existing jobs rather than 404)
#   API_FUZZ_EXAMPLES  examples per operation (default 20)
# /api/v1/watch is left out: it is a stream that does not end.
# Exit codes: schemathesis' own (0: no failure); 1 and 2 as
# schemathesis-env.sh when it cannot be installed.
set -euo pipefail

if [[ $# -lt 1 ]]; then
    echo "usage: $0 ADDRESS [SCHEMATHESIS RUN OPTIONS...]" >&2
    exit 64
fi
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
base="$1"
shift
[[ "$base" == http://* || "$base" == https://* ]] || base="http://$base"
base="${base%/}"

program="$("$repo/scripts/schemathesis-env.sh" | tail -n 1)"
config=()
if [[ -n "${API_FUZZ_CONFIG:-}" ]]; then
    config=(--config-file "$API_FUZZ_CONFIG")
fi
exec "$program" --no-color "${config[@]}" run "$base/api/v1/openapi.json" \
    --url "$base" \
    --checks not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance \
    --max-examples "${API_FUZZ_EXAMPLES:-20}" \
    --exclude-path /api/v1/watch \
    --request-timeout 5 \
    --workers 2 \
    --suppress-health-check all \
    "$@"
