#!/usr/bin/env bash
# Installs the TLS peer of the private-CA tests: mitmproxy (PyPI, a pinned version), a
# TLS-intercepting proxy with its own certificate authority, into a virtual environment
# under .ci/.cache/tls. Idempotent: when the pinned version is there, it returns at once.
# Tests call it on first use; .ci/run calls it before the tests.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
state="$root/.ci/.cache/tls"
venv="$state/mitmproxy-venv"
version="11.0.2"
stamp="$state/mitmproxy-$version.stamp"
mkdir -p "$state"

# Tests in one process may call this at the same moment: one installs, the others wait.
exec 9>"$state/.install.lock"
flock 9

if [ ! -f "$stamp" ] || [ ! -x "$venv/bin/mitmdump" ]; then
  python="$(command -v python3 || true)"
  if [ -z "$python" ]; then
    echo "tls-setup: python3 is missing; install Python 3.10 or later (Debian: python3 python3-venv)" >&2
    exit 1
  fi
  rm -rf "$venv" "$state"/mitmproxy-*.stamp
  "$python" -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check "mitmproxy==$version"
  touch "$stamp"
fi
echo "tls-setup: mitmproxy $version at $venv/bin/mitmdump"
