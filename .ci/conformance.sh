#!/usr/bin/env bash
# The MCP conformance suite (npm @modelcontextprotocol/conformance 0.2.0-alpha.12, pinned
# with Node 22 in tests/conformance/package-lock.json) against `mcp-app-server connect`:
# every auth scenario of the 2025-11-25, 2026-07-28 and 2025-03-26 revisions and the client
# scenarios initialize, tools_call, http-standard-headers and request-metadata, each alone
# and once per revision it is tagged with, each with a clean MCP_APP_SERVER_HOME; the
# extension scenarios of implemented extensions (client credentials, workload identity),
# once each; the other extension scenarios are listed as skipped. Ends with `N passed, M failed, K skipped`; exits non-zero
# on any failure. See tests/conformance/run.sh for choosing a subset.
#
#   bash .ci/conformance.sh                                 # the whole selection
#   bash .ci/conformance.sh auth/scope-step-up              # at each of its revisions
#   bash .ci/conformance.sh 'auth/iss-*@2026-07-28'         # patterns, one revision
#   CONFORMANCE_SCENARIOS=tools_call bash .ci/conformance.sh
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
dir="$root/tests/conformance"
stamp="$dir/node_modules/.installed-lock-sha256"

if ! command -v npm >/dev/null 2>&1; then
  echo "conformance: npm is required" >&2
  exit 1
fi
want="$(sha256sum "$dir/package-lock.json" | cut -d' ' -f1)"
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  npm ci --prefix "$dir" --no-audit --no-fund --loglevel=error
  echo "$want" > "$stamp"
fi

cargo build -p mcp-app-server --locked
MCP_APP_SERVER_BIN="${CARGO_TARGET_DIR:-$root/target}/debug/mcp-app-server" exec "$dir/run.sh" "$@"
