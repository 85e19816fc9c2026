#!/usr/bin/env bash
# Checks the generated protocol files with real TypeScript and JSON Schema tooling:
#   1. installs tests/ts (typescript, ajv) and bindings/ (typescript, @types/node) from their
#      lock files,
#   2. type-checks the bindings/ package (generated types and client, hand-written transport)
#      under its strict tsconfig, then tests/ts/client-example.ts against the generated types,
#   3. validates every schema/ file against the draft-07 meta-schema and sample messages,
#   4. compares schema/ with the last released copy (schema/released/<version>/) and fails on
#      a change that would break an existing frontend unless the major version moved; the
#      comparison's own tests (fixtures with breaking changes) run first.
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
echo "tests/ts/client-example.ts, tests/ts/narrowing.ts: type-check passed"

node tests/ts/validate-schema.mjs "$root"

node --test tests/ts/schema-compat.test.mjs
node tests/ts/schema-compat.mjs "$root"
