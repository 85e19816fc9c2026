#!/usr/bin/env bash
# Installs the network peers the corporate-network tests run against: tinyproxy (an HTTP
# proxy, Debian's package tinyproxy-bin). Idempotent: when the tools are there, it returns
# at once. Tests call it on first use; .ci/run calls it before the tests.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
state="$root/.ci/.cache/network"
mkdir -p "$state"

# Tests in one process may call this at the same moment: one installs, the others wait.
exec 9>"$state/.install.lock"
flock 9

have_tinyproxy() { command -v tinyproxy >/dev/null 2>&1 || [ -x /usr/bin/tinyproxy ]; }

if ! have_tinyproxy; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "network-setup: tinyproxy is missing; install Debian's package tinyproxy-bin (needs root)" >&2
    exit 1
  fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -qq --no-install-recommends tinyproxy-bin >/dev/null 2>&1 || {
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends tinyproxy-bin
  }
fi
echo "network-setup: tinyproxy $(tinyproxy -v 2>&1 | head -1)"
