#!/usr/bin/env bash
# Checks the generated protocol files with real TypeScript and JSON Schema tooling:
#   1. installs tests/ts (typescript, ajv) and bindings/ (typescript, @types/node) from their
#      lock files,
#   2. type-checks the bindings/ package (generated types and client, hand-written transport)
#      under its strict tsconfig, then tests/ts/client-example.ts against the generated types,
#   3. validates every schema/ file against the draft-07 meta-schema and sample messages.
# That the files match the Rust types is checked by `cargo test -p mcp-app-server-protocol`.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

npm ci --prefix tests/ts --no-audit --no-fund
npm ci --prefix bindings --no-audit --no-fund

npm run --prefix bindings --silent check
echo "bindings/: type-check passed"
tsc=tests/ts/node_modules/.bin/tsc
"$tsc" --strict --noEmit -p tests/ts/tsconfig.json
echo "tests/ts/client-example.ts: type-check passed"

node tests/ts/validate-schema.mjs "$root"
