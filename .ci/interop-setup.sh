#!/usr/bin/env bash
# Installs the third-party interop peers (tests/interop: oidc-provider, MCP TypeScript SDK)
# exactly as pinned by tests/interop/package-lock.json. Idempotent: when node_modules was
# installed from the same lock file, it returns at once.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
dir="$root/tests/interop"
stamp="$dir/node_modules/.installed-lock-sha256"

if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  echo "interop-setup: node and npm are required (Node >= 20)" >&2
  exit 1
fi
major="$(node -p 'process.versions.node.split(".")[0]')"
if [ "$major" -lt 20 ]; then
  echo "interop-setup: Node >= 20 is required, found $(node --version)" >&2
  exit 1
fi

# Tests in one process may call this at the same moment: one installs, the others wait.
mkdir -p "$dir"
exec 9>"$dir/.install.lock"
flock 9

want="$(sha256sum "$dir/package-lock.json" | cut -d' ' -f1)"
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
  echo "interop-setup: tests/interop already installed"
  exit 0
fi

npm ci --prefix "$dir" --no-audit --no-fund --loglevel=error
echo "$want" > "$stamp"
echo "interop-setup: installed tests/interop ($(node -p "require('$dir/node_modules/oidc-provider/package.json').version") oidc-provider, $(node -p "require('$dir/node_modules/@modelcontextprotocol/sdk/package.json').version") MCP SDK)"
