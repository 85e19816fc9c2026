#!/usr/bin/env bash
# Instructions per request of `mcp-app-server serve-client-metadata` (docs/benchmarks.md,
# "Client metadata host"): a figure that does not move with the machine's load, unlike the
# requests per second of .ci/bench-cimd-host.sh. Runs the host under
# `valgrind --tool=callgrind`, drives it with wrk for DURATION seconds (one document URL,
# then 1,000 distinct URLs round robin), and divides the instructions by the requests
# answered, after subtracting those of a run that answers none (start-up and shutdown).
#
#   BIN=path/to/mcp-app-server DURATION=10 bash .ci/profile-cimd-host.sh
#
# Needs valgrind and wrk (Debian packages; installed when missing). KEEP=dir keeps the
# callgrind files for `callgrind_annotate`.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
duration="${DURATION:-10}"

if ! command -v wrk >/dev/null 2>&1 || ! command -v valgrind >/dev/null 2>&1; then
  (
    flock 9
    if ! command -v wrk >/dev/null 2>&1 || ! command -v valgrind >/dev/null 2>&1; then
      apt-get update -qq
      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq valgrind wrk >/dev/null
    fi
  ) 9>/tmp/mcp-app-server-bench-apt.lock
fi

if [ -z "${BIN:-}" ]; then
  cargo build --release -p mcp-app-server --manifest-path "$root/Cargo.toml" >&2
  BIN="${CARGO_TARGET_DIR:-$root/target}/release/mcp-app-server"
fi

work="$(mktemp -d)"
host_pid=""
cleanup() {
  [ -n "$host_pid" ] && kill "$host_pid" 2>/dev/null || true
  wait 2>/dev/null || true
  if [ -n "${KEEP:-}" ]; then
    mkdir -p "$KEEP" && cp "$work"/cg.* "$KEEP"/ 2>/dev/null || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT

id="XuuuHAzzHOni"
path="/mcp/oauth/$id/client.json?redirect_uri=http%3A%2F%2F127.0.0.1%3A8765%2Fcallback%2F$id"
python3 - "$work/distinct.lua" <<'EOF'
import random, string, sys
rng = random.Random(7)
paths = []
for i in range(1000):
    cid = "".join(rng.choice(string.ascii_letters + string.digits) for _ in range(12))
    paths.append(f"/mcp/oauth/{cid}/client.json?redirect_uri=http%3A%2F%2F127.0.0.1%3A{20000 + i}%2Fcallback%2F{cid}")
with open(sys.argv[1], "w") as f:
    f.write("local paths = {\n")
    for p in paths:
        f.write(f'  "{p}",\n')
    f.write("}\nlocal i = 0\nrequest = function()\n  i = i % #paths + 1\n"
            "  return wrk.format(\"GET\", paths[i])\nend\n")
EOF

# One run of the host under callgrind; `$1` names it, `$2` is the path wrk asks for, the
# rest are wrk's other arguments (no path: no request). Prints "<instructions> <requests>".
run() {
  local name="$1" target="${2:-}"
  shift
  [ "$#" -gt 0 ] && shift
  valgrind --tool=callgrind --callgrind-out-file="$work/cg.$name" \
    "$BIN" serve-client-metadata --listen 127.0.0.1:0 \
    --public-base-url https://ide.example.com/mcp/oauth --client-name "Bench IDE" \
    2>"$work/$name.log" &
  host_pid=$!
  for _ in $(seq 600); do
    grep -q "listening on http://[^ ]* for" "$work/$name.log" && break
    sleep 0.1
  done
  local addr
  addr="$(sed -n 's/.*listening on http:\/\/\([^ ]*\) .*/\1/p' "$work/$name.log" | head -1)"
  [ -n "$addr" ] || { cat "$work/$name.log" >&2; exit 1; }
  local requests=0
  if [ -n "$target" ]; then
    requests="$(wrk -t1 -c8 -d"${duration}s" "$@" "http://$addr$target" |
      awk '/requests in/ {print $1}')"
  fi
  kill -TERM "$host_pid"
  wait "$host_pid" || true
  host_pid=""
  local total
  total="$(callgrind_annotate "$work/cg.$name" 2>/dev/null |
    awk '/PROGRAM TOTALS/ {gsub(",", "", $1); print $1}')"
  echo "$total $requests"
}

read -r idle _ < <(run idle)
read -r one one_requests < <(run one "$path")
read -r distinct distinct_requests < <(run distinct / -s "$work/distinct.lua")
echo "binary: $BIN"
echo "start-up and shutdown: $idle instructions"
awk -v i="$idle" -v t="$one" -v r="$one_requests" \
  'BEGIN { printf "one URL: %d requests, %.0f instructions per request\n", r, (t - i) / r }'
awk -v i="$idle" -v t="$distinct" -v r="$distinct_requests" \
  'BEGIN { printf "1,000 URLs: %d requests, %.0f instructions per request\n", r, (t - i) / r }'
