// Validates every file under schema/ against the JSON Schema draft-07 meta-schema with ajv,
// compiles each, and checks sample messages against them (valid ones pass, broken ones fail).
// Usage: node tests/ts/validate-schema.mjs [repo root]

import { readdirSync, readFileSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import Ajv from "ajv";

const root = resolve(process.argv[2] ?? join(dirname(fileURLToPath(import.meta.url)), "..", ".."));
const schemaDir = join(root, "schema");
const DRAFT07 = "http://json-schema.org/draft-07/schema#";

// schemars annotates integers with their Rust width; teach ajv what each one allows.
const INTEGER_FORMATS = {
  int8: [-(2 ** 7), 2 ** 7 - 1],
  int16: [-(2 ** 15), 2 ** 15 - 1],
  int32: [-(2 ** 31), 2 ** 31 - 1],
  int64: [Number.MIN_SAFE_INTEGER, Number.MAX_SAFE_INTEGER],
  uint8: [0, 2 ** 8 - 1],
  uint16: [0, 2 ** 16 - 1],
  uint32: [0, 2 ** 32 - 1],
  uint64: [0, Number.MAX_SAFE_INTEGER],
  uint: [0, Number.MAX_SAFE_INTEGER],
  int: [Number.MIN_SAFE_INTEGER, Number.MAX_SAFE_INTEGER],
};

// Draft-07 is the default meta-schema of ajv 8's `Ajv` class. Strict mode is off so
// annotation keywords ajv does not know do not fail compilation.
const ajv = new Ajv({ strict: false, allErrors: true });
for (const [name, [min, max]] of Object.entries(INTEGER_FORMATS)) {
  ajv.addFormat(name, { type: "number", validate: (n) => Number.isInteger(n) && n >= min && n <= max });
}

function listJson(dir) {
  return readdirSync(dir, { withFileTypes: true })
    .flatMap((e) => (e.isDirectory() ? listJson(join(dir, e.name)) : e.name.endsWith(".json") ? [join(dir, e.name)] : []))
    .sort();
}

const failures = [];
const compiled = new Map();

for (const file of listJson(schemaDir)) {
  const name = relative(root, file);
  let schema;
  try {
    schema = JSON.parse(readFileSync(file, "utf8"));
  } catch (e) {
    failures.push(`${name}: not JSON: ${e.message}`);
    continue;
  }
  if (schema.$schema !== DRAFT07) {
    failures.push(`${name}: $schema is ${JSON.stringify(schema.$schema)}, expected ${DRAFT07}`);
  }
  if (!ajv.validateSchema(schema)) {
    failures.push(`${name}: invalid against the draft-07 meta-schema: ${ajv.errorsText(ajv.errors)}`);
    continue;
  }
  try {
    compiled.set(relative(schemaDir, file), ajv.compile(schema));
  } catch (e) {
    failures.push(`${name}: does not compile: ${e.message}`);
  }
}

// Envelope definitions of the bundle, addressed by JSON pointer.
const bundleFile = "mcp-app-server.schema.json";
const bundle = JSON.parse(readFileSync(join(schemaDir, bundleFile), "utf8"));
ajv.addSchema(bundle, "bundle");
const definition = (name) => ajv.getSchema(`bundle#/definitions/${name}`);
for (const required of ["ClientRequest", "ServerNotification", "JsonRpcErrorResponse", "ErrorKind"]) {
  if (!bundle.definitions?.[required]) failures.push(`${bundleFile}: no definition ${required}`);
}

// [schema file or bundle definition, instance, should it be valid?]
const samples = [
  ["requests/initialize.params.json", { clientInfo: { name: "my-ide", version: "1.0.0" } }, true],
  [
    "requests/initialize.params.json",
    { clientInfo: { name: "my-ide", title: null, version: "1" }, capabilities: { optOutNotificationMethods: ["mcpServer/authStatus/changed"] } },
    true,
  ],
  ["requests/initialize.params.json", { clientInfo: { name: "my-ide", version: 3 } }, false],
  ["requests/initialize.params.json", { clientInfo: { name: "my-ide", version: "1" }, extra: true }, false],
  ["requests/mcpServer.oauth.login.params.json", { name: "linear", scopes: null, clientRegistration: "dcr", timeoutSecs: 60 }, true],
  ["requests/mcpServer.oauth.login.params.json", { name: "linear", clientRegistration: "magic" }, false],
  ["requests/mcpServer.oauth.login.params.json", { name: "linear", timeoutSecs: -1 }, false],
  ["requests/mcpServer.oauth.login.params.json", {}, false],
  ["requests/config.mcpServer.reload.params.json", {}, true],
  ["requests/mcpServer.oauth.token.result.json", { accessToken: "t", tokenType: "Bearer", expiresAt: 1767225600, scopes: [] }, true],
  ["requests/mcpServer.oauth.token.result.json", { accessToken: "t", tokenType: "Bearer", scopes: "read" }, false],
  ["requests/mcpServer.oauth.challenge.params.json", { name: "a", status: 401, wwwAuthenticate: "Bearer" }, true],
  ["requests/mcpServer.oauth.challenge.params.json", { name: "a", status: "401", wwwAuthenticate: "Bearer" }, false],
  ["requests/mcpServer.oauth.challenge.result.json", { action: "token", accessToken: "t", tokenType: "Bearer", scopes: [] }, true],
  ["requests/mcpServer.oauth.challenge.result.json", { action: "login", authorizationUrl: "https://as/a", redirectUri: "http://127.0.0.1:1/callback/x", scopes: ["a"] }, true],
  ["requests/mcpServer.oauth.challenge.result.json", { action: "reauthenticationRequired", reason: "r" }, true],
  ["requests/mcpServer.oauth.challenge.result.json", { action: "login", reason: "r" }, false],
  ["requests/mcpServer.oauth.challenge.result.json", { accessToken: "t", tokenType: "Bearer", scopes: [] }, false],
  [
    "requests/mcpServerStatus.list.result.json",
    { data: [{ name: "linear", transport: "streamableHttp", url: "https://mcp.linear.app/mcp", authStatus: "loggedIn", registration: "cimd" }] },
    true,
  ],
  ["requests/mcpServerStatus.list.result.json", { data: [{ name: "x", transport: "carrier-pigeon", authStatus: "loggedIn" }] }, false],
  ["notifications/mcpServer.oauthLogin.completed.json", { name: "a", success: false, error: "timed out", errorKind: "loginTimedOut" }, true],
  ["notifications/mcpServer.oauthLogin.completed.json", { name: "a", success: false, errorKind: "oops" }, false],
  ["#ClientRequest", { jsonrpc: "2.0", id: 1, method: "config/mcpServer/reload" }, true],
  ["#ClientRequest", { id: "a", method: "mcpServer/oauth/cancel", params: { name: "linear" } }, true],
  ["#ClientRequest", { id: 1, method: "mcpServer/oauth/login", params: {} }, false],
  ["#ClientRequest", { id: 1, method: "nope" }, false],
  ["#ServerNotification", { jsonrpc: "2.0", method: "mcpServer/authStatus/changed", params: { name: "a", authStatus: "expired" } }, true],
  ["#ServerNotification", { jsonrpc: "2.0", method: "mcpServer/authStatus/changed", params: { name: "a" } }, false],
  ["#JsonRpcErrorResponse", { jsonrpc: "2.0", id: null, error: { code: -32700, message: "parse error" } }, true],
  ["#JsonRpcErrorResponse", { jsonrpc: "2.0", id: 4, error: { code: -32010, message: "no such server", data: { kind: "serverNotFound" } } }, true],
  ["#JsonRpcErrorResponse", { jsonrpc: "2.0", id: 4, error: { code: -32010, message: "x", data: { kind: "madeUp" } } }, false],
];

for (const [target, instance, expected] of samples) {
  const validate = target.startsWith("#") ? definition(target.slice(1)) : compiled.get(target);
  if (!validate) {
    failures.push(`sample: no schema ${target}`);
    continue;
  }
  const valid = validate(instance);
  if (valid !== expected) {
    const why = valid ? "accepted" : `rejected (${ajv.errorsText(validate.errors)})`;
    failures.push(`sample for ${target} ${why}: ${JSON.stringify(instance)}`);
  }
}

if (failures.length > 0) {
  console.error(`schema check failed:\n  ${failures.join("\n  ")}`);
  process.exit(1);
}
console.log(`schema check: ${compiled.size} schema files valid draft-07 and compiled; ${samples.length} samples as expected`);
