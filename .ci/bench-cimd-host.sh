#!/usr/bin/env bash
# Throughput of `mcp-app-server serve-client-metadata` against nginx serving a static file
# of the same size, in the same run, on loopback (docs/benchmarks.md, "Client metadata
# host"). Installs nginx and wrk from Debian's packages when missing.
#
#   bash .ci/bench-cimd-host.sh            # builds the release binary first
#   BIN=path/to/mcp-app-server ROUNDS=5 DURATION=10 CONNECTIONS=64 bash .ci/bench-cimd-host.sh
#
# Each round runs wrk (2 threads, CONNECTIONS keep-alive connections, DURATION seconds)
# against nginx, the host with one document URL, and the host with 1,000 distinct document
# URLs in turn, and prints requests per second and the host's share of nginx's rate.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
rounds="${ROUNDS:-3}"
duration="${DURATION:-10}"
connections="${CONNECTIONS:-64}"

if ! command -v wrk >/dev/null 2>&1 || ! command -v nginx >/dev/null 2>&1; then
  (
    flock 9
    if ! command -v wrk >/dev/null 2>&1 || ! command -v nginx >/dev/null 2>&1; then
      apt-get update -qq
      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nginx-light wrk >/dev/null
    fi
  ) 9>/tmp/mcp-app-server-bench-apt.lock
fi
nginx_bin="$(command -v nginx)"

if [ -z "${BIN:-}" ]; then
  cargo build --release -p mcp-app-server --manifest-path "$root/Cargo.toml" >&2
  BIN="${CARGO_TARGET_DIR:-$root/target}/release/mcp-app-server"
fi

work="$(mktemp -d)"
host_pid=""
nginx_pid=""
cleanup() {
  [ -n "$host_pid" ] && kill "$host_pid" 2>/dev/null || true
  [ -n "$nginx_pid" ] && kill "$nginx_pid" 2>/dev/null || true
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# The document host.
"$BIN" serve-client-metadata --listen 127.0.0.1:0 \
  --public-base-url https://ide.example.com/mcp/oauth --client-name "Bench IDE" \
  2>"$work/host.log" &
host_pid=$!
for _ in $(seq 100); do
  grep -q "listening on http://" "$work/host.log" && break
  sleep 0.1
done
host_addr="$(sed -n 's/.*listening on http:\/\/\([^ ]*\) .*/\1/p' "$work/host.log" | head -1)"
[ -n "$host_addr" ] || { cat "$work/host.log" >&2; exit 1; }

id="XuuuHAzzHOni"
path="/mcp/oauth/$id/client.json?redirect_uri=http%3A%2F%2F127.0.0.1%3A8765%2Fcallback%2F$id"
python3 - "$host_addr" "$path" "$work/client.json" <<'EOF'
import sys, urllib.request
addr, path, out = sys.argv[1:]
body = urllib.request.urlopen(f"http://{addr}{path}").read()
open(out, "wb").write(body)
EOF

# 1,000 distinct document URLs (ids and ports differ), taken round robin.
python3 - "$work/distinct.lua" <<'EOF'
import random, string, sys
rng = random.Random(7)
paths = []
for i in range(1000):
    cid = "".join(rng.choice(string.ascii_letters + string.digits) for _ in range(12))
    port = 20000 + i
    paths.append(f"/mcp/oauth/{cid}/client.json?redirect_uri=http%3A%2F%2F127.0.0.1%3A{port}%2Fcallback%2F{cid}")
with open(sys.argv[1], "w") as f:
    f.write("local paths = {\n")
    for p in paths:
        f.write(f'  "{p}",\n')
    f.write("}\nlocal i = 0\nrequest = function()\n  i = i % #paths + 1\n"
            "  return wrk.format(\"GET\", paths[i])\nend\n")
EOF

# nginx: the same bytes as a static file, as a tuned static server serves them.
nginx_port="$(free_port)"
mkdir -p "$work/www/mcp/oauth/$id" "$work/nginx"
cp "$work/client.json" "$work/www/mcp/oauth/$id/client.json"
chmod -R a+rX "$work/www" && chmod a+x "$work"  # nginx workers run as another user
cat >"$work/nginx/nginx.conf" <<EOF
worker_processes auto;
daemon off;
pid $work/nginx/nginx.pid;
error_log $work/nginx/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  sendfile on;
  tcp_nopush on;
  keepalive_requests 1000000;
  open_file_cache max=100;
  client_body_temp_path $work/nginx/body;
  proxy_temp_path $work/nginx/proxy;
  fastcgi_temp_path $work/nginx/fastcgi;
  uwsgi_temp_path $work/nginx/uwsgi;
  scgi_temp_path $work/nginx/scgi;
  server {
    listen 127.0.0.1:$nginx_port;
    root $work/www;
    default_type application/json;
    add_header Cache-Control "public, max-age=3600";
    add_header X-Content-Type-Options nosniff;
  }
}
EOF
"$nginx_bin" -c "$work/nginx/nginx.conf" -p "$work/nginx" 2>"$work/nginx/stderr.log" &
nginx_pid=$!
for _ in $(seq 50); do
  python3 -c "import socket; socket.create_connection(('127.0.0.1', $nginx_port), 0.2)" 2>/dev/null && break
  sleep 0.1
done
nginx_size="$(python3 -c "import urllib.request; print(len(urllib.request.urlopen('http://127.0.0.1:$nginx_port$path').read()))")"
echo "document: $(wc -c <"$work/client.json") bytes from the host, $nginx_size bytes from nginx"
echo "load: wrk -t2 -c$connections -d${duration}s, $rounds rounds; load average $(cut -d' ' -f1-3 /proc/loadavg)"

rate() {
  # wrk's "Requests/sec:" line.
  wrk -t2 -c"$connections" -d"${duration}s" "$@" | awk '/Requests\/sec/ {print $2}'
}

printf '%-6s %12s %12s %12s %8s %8s\n' round nginx host host-1000 ratio ratio-1000
for round in $(seq "$rounds"); do
  n="$(rate "http://127.0.0.1:$nginx_port$path")"
  h="$(rate "http://$host_addr$path")"
  d="$(rate -s "$work/distinct.lua" "http://$host_addr/")"
  awk -v r="$round" -v n="$n" -v h="$h" -v d="$d" \
    'BEGIN { printf "%-6s %12.0f %12.0f %12.0f %8.2f %8.2f\n", r, n, h, d, h / n, d / n }'
done
echo "host RSS after the runs: $(awk '/VmRSS/ {print $2, $3}' "/proc/$host_pid/status")"
