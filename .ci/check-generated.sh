#!/usr/bin/env bash
# Checks the generated protocol files with real TypeScript and JSON Schema tooling:
#   1. installs tests/ts (typescript, ajv) from its lock file,
#   2. type-checks bindings/ on its own, then tests/ts/client-example.ts against it,
#   3. validates every schema/ file against the draft-07 meta-schema and sample messages.
# That the files match the Rust types is checked by `cargo test -p mcp-app-server-protocol`.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

npm ci --prefix tests/ts --no-audit --no-fund

tsc=tests/ts/node_modules/.bin/tsc
"$tsc" --strict --noEmit -p bindings/tsconfig.json
echo "bindings/: type-check passed"
"$tsc" --strict --noEmit -p tests/ts/tsconfig.json
echo "tests/ts/client-example.ts: type-check passed"

node tests/ts/validate-schema.mjs "$root"
