#!/usr/bin/env bash
# The MCP conformance suite (npm @modelcontextprotocol/conformance, pinned with Node 22 in
# tests/conformance/package-lock.json) against `mcp-app-server connect`: every scenario of
# the auth suite and of the draft suite, one by one, each with a clean MCP_APP_SERVER_HOME.
# Ends with the line `N passed, M failed`; exits non-zero on any failure.
#
#   bash .ci/conformance.sh                    # all of them
#   bash .ci/conformance.sh auth/scope-step-up # chosen scenarios
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
