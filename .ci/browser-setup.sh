#!/usr/bin/env bash
# Installs what the real-browser test of the login pages needs (tests/browser): Chromium from
# Debian's package `chromium` (never a browser download) and the npm packages pinned by
# tests/browser/package-lock.json (puppeteer-core, oidc-provider). Idempotent: returns at once
# when /usr/bin/chromium exists and node_modules was installed from the same lock file.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
dir="$root/tests/browser"
stamp="$dir/node_modules/.installed-lock-sha256"
chromium=/usr/bin/chromium

if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  echo "browser-setup: node and npm are required (Node >= 20)" >&2
  exit 1
fi

# Tests in one process may call this at the same moment: one installs, the others wait.
exec 9>"$dir/.install.lock"
flock 9

if [ ! -x "$chromium" ]; then
  if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
    echo "browser-setup: $chromium is missing; install Debian's package: sudo apt-get install chromium" >&2
    exit 1
  fi
  echo "browser-setup: installing Debian's chromium package"
  export DEBIAN_FRONTEND=noninteractive
  apt_get() { apt-get -o DPkg::Lock::Timeout=600 -q "$@"; }
  apt_get install -y --no-install-recommends chromium >/dev/null \
    || { apt_get update >/dev/null && apt_get install -y --no-install-recommends chromium >/dev/null; }
fi

want="$(sha256sum "$dir/package-lock.json" | cut -d' ' -f1)"
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
  echo "browser-setup: $("$chromium" --version 2>/dev/null | head -1) and tests/browser already installed"
  exit 0
fi

PUPPETEER_SKIP_DOWNLOAD=1 npm ci --prefix "$dir" --no-audit --no-fund --loglevel=error
echo "$want" > "$stamp"
echo "browser-setup: installed tests/browser (puppeteer-core $(node -p "require('$dir/node_modules/puppeteer-core/package.json').version"), $("$chromium" --version 2>/dev/null | head -1))"
