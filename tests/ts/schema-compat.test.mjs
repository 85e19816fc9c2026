// Tests of schema-compat.mjs: fixtures of old and new schemas, the breaking ones must be
// caught and the additions must pass; then the whole check on a copy of the repository's
// schema with a deliberately breaking change.
// Run: node --test tests/ts/schema-compat.test.mjs

import assert from "node:assert/strict";
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync, mkdirSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { test } from "node:test";
import { fileURLToPath } from "node:url";

import { breakingChanges, check, compareVersions, release } from "./schema-compat.mjs";

const repo = join(dirname(fileURLToPath(import.meta.url)), "..", "..");

const params = (properties, required = [], extra = {}) => ({
  type: "object",
  additionalProperties: false,
  properties,
  required,
  ...extra,
});
const object = (properties, required = []) => ({ type: "object", properties, required });
const str = { type: "string" };
const nullableStr = { type: ["string", "null"] };
const mode = (...values) => ({ definitions: { Mode: { type: "string", enum: values } } });

const PARAMS_OLD = params({ name: str, note: nullableStr, mode: { anyOf: [{ $ref: "#/definitions/Mode" }, { type: "null" }] } }, ["name"], mode("auto", "cimd", "dcr"));

test("request params: what old frontends send must still be accepted", () => {
  const cases = [
    ["a required field added", params({ ...PARAMS_OLD.properties, extra: str }, ["name", "extra"], mode("auto", "cimd", "dcr")), /extra: was required, now missing/],
    ["an optional field made required", params(PARAMS_OLD.properties, ["name", "note"], mode("auto", "cimd", "dcr")), /note: was required, now optional/],
    ["a field removed while unknown fields are refused", params({ name: str, mode: PARAMS_OLD.properties.mode }, ["name"], mode("auto", "cimd", "dcr")), /note: not accepted/],
    ["an enum value removed", params(PARAMS_OLD.properties, ["name"], mode("auto", "dcr")), /value "cimd" is not among/],
    ["a type changed", params({ ...PARAMS_OLD.properties, name: { type: "integer" } }, ["name"], mode("auto", "cimd", "dcr")), /name: type string does not fit integer/],
    ["a nullable field no longer nullable", params({ ...PARAMS_OLD.properties, note: str }, ["name"], mode("auto", "cimd", "dcr")), /note: type string\|null does not fit string/],
  ];
  for (const [what, next, expected] of cases) {
    const found = breakingChanges(PARAMS_OLD, next, "params");
    assert.ok(found.some((p) => expected.test(p)), `${what}: expected ${expected}, got ${JSON.stringify(found)}`);
  }
});

test("request params: additions pass", () => {
  const widened = params({ ...PARAMS_OLD.properties, extra: nullableStr, name: { type: ["string", "null"] } }, [], mode("auto", "cimd", "dcr", "new"));
  assert.deepEqual(breakingChanges(PARAMS_OLD, widened, "params"), []);
  assert.deepEqual(breakingChanges(PARAMS_OLD, PARAMS_OLD, "params"), []);
});

const RESULT_OLD = object({ token: str, expiresAt: { type: ["integer", "null"] }, kind: { $ref: "#/definitions/Kind" } }, ["token", "kind"]);
RESULT_OLD.definitions = { Kind: { type: "string", enum: ["a", "b"] } };

test("results: what the daemon now sends must fit what old frontends read", () => {
  const withDefs = (s) => ({ ...s, definitions: RESULT_OLD.definitions });
  const cases = [
    ["a required field removed", withDefs(object({ expiresAt: RESULT_OLD.properties.expiresAt, kind: RESULT_OLD.properties.kind }, ["kind"])), /token: was required, now missing/],
    ["a required field made optional", withDefs(object(RESULT_OLD.properties, ["kind"])), /token: was required, now optional/],
    ["a type widened", withDefs(object({ ...RESULT_OLD.properties, token: { type: ["string", "null"] } }, ["token", "kind"])), /token: type string\|null does not fit string/],
    ["a type changed", withDefs(object({ ...RESULT_OLD.properties, expiresAt: str }, ["token", "kind"])), /expiresAt: type string does not fit integer\|null/],
  ];
  for (const [what, next, expected] of cases) {
    const found = breakingChanges(RESULT_OLD, next, "result");
    assert.ok(found.some((p) => expected.test(p)), `${what}: expected ${expected}, got ${JSON.stringify(found)}`);
  }
});

test("results: added fields, enum values and union variants pass; narrowing passes", () => {
  const next = {
    ...object({ ...RESULT_OLD.properties, added: str, expiresAt: { type: "integer" } }, ["token", "kind", "added"]),
    definitions: { Kind: { type: "string", enum: ["a", "b", "c"] } },
  };
  assert.deepEqual(breakingChanges(RESULT_OLD, next, "result"), []);
});

test("results: an object that became a tagged union passes when every variant fits", () => {
  // The login's answer of protocol 0.1.0 and the union by `flow` of 1.0.0.
  const before = object({ authorizationUrl: nullableStr, redirectUri: nullableStr, grant: { type: "string", enum: ["authorizationCode", "clientCredentials"] } }, ["grant"]);
  const browser = object({ flow: { type: "string", const: "browser" }, authorizationUrl: str, redirectUri: str, grant: { type: "string", enum: ["authorizationCode"] } }, ["flow", "authorizationUrl", "redirectUri", "grant"]);
  const direct = object({ flow: { type: "string", const: "direct" }, grant: { type: "string", enum: ["clientCredentials"] } }, ["flow", "grant"]);
  assert.deepEqual(breakingChanges(before, { oneOf: [browser, direct] }, "result"), []);
  // A variant that lost the required field does not fit.
  const broken = object({ flow: { type: "string", const: "direct" } }, ["flow"]);
  assert.match(breakingChanges(before, { oneOf: [browser, broken] }, "result").join("\n"), /grant: was required, now missing/);
  // A new tag value is an addition; a known variant that changed is not.
  const device = object({ flow: { type: "string", const: "device" }, userCode: str }, ["flow", "userCode"]);
  assert.deepEqual(breakingChanges({ oneOf: [browser, direct] }, { oneOf: [browser, direct, device] }, "result"), []);
  const narrowedBrowser = object({ ...browser.properties }, ["flow", "grant"]);
  assert.match(
    breakingChanges({ oneOf: [browser, direct] }, { oneOf: [narrowedBrowser, direct] }, "result").join("\n"),
    /authorizationUrl: was required, now optional/,
  );
  // For requests a variant removed is a break.
  assert.notDeepEqual(breakingChanges({ oneOf: [browser, direct] }, { oneOf: [browser] }, "params"), []);
});

test("enums written as one const per value: removing one breaks requests, adding one passes results", () => {
  const kinds = (...v) => ({ oneOf: v.map((c) => ({ type: "string", const: c, description: c })) });
  assert.match(breakingChanges(kinds("a", "b", "c"), kinds("a", "b"), "params").join("\n"), /value "c" is not among "a"/);
  assert.deepEqual(breakingChanges(kinds("a", "b"), kinds("a", "b", "c"), "params"), []);
  assert.deepEqual(breakingChanges(kinds("a", "b"), kinds("a", "b", "c"), "result"), []);
  assert.deepEqual(breakingChanges(kinds("a", "b"), kinds("a"), "result"), []);
  // Also behind a nullable reference, as `errorKind` is.
  const nullable = (k) => ({ definitions: { K: k }, type: "object", properties: { kind: { anyOf: [{ $ref: "#/definitions/K" }, { type: "null" }] } } });
  assert.deepEqual(breakingChanges(nullable(kinds("a", "b")), nullable(kinds("a", "b", "c")), "notification"), []);
  assert.notDeepEqual(breakingChanges(nullable(kinds("a", "b")), nullable(kinds("a")), "params"), []);
  // A value that became a string of any kind is a widening.
  assert.notDeepEqual(breakingChanges(kinds("a", "b"), { type: "string" }, "result"), []);
});

test("versions compare as semver", () => {
  assert.ok(compareVersions("1.10.0", "1.9.9") > 0);
  assert.equal(compareVersions("1.0.0", "1.0.0"), 0);
  assert.throws(() => compareVersions("1.0", "1.0.0"), /not a semver version/);
});

/** A copy of the repository's schema and package.json in a temp dir. */
function scratch(version) {
  const dir = mkdtempSync(join(tmpdir(), "schema-compat-"));
  cpSync(join(repo, "schema"), join(dir, "schema"), { recursive: true });
  mkdirSync(join(dir, "bindings"));
  writeFileSync(join(dir, "bindings", "package.json"), JSON.stringify({ version }));
  return dir;
}

const loginParams = (dir) => join(dir, "schema", "requests", "mcpServer.oauth.login.params.json");
const tokenResult = (dir) => join(dir, "schema", "requests", "mcpServer.oauth.token.result.json");
const edit = (file, change) => {
  const schema = JSON.parse(readFileSync(file, "utf8"));
  change(schema);
  writeFileSync(file, JSON.stringify(schema));
};

test("the repository's schema passes against its last release", () => {
  const [code, lines] = check(repo);
  assert.equal(code, 0, lines.join("\n"));
});

test("a deliberately breaking change fails the check unless the major version moved", () => {
  const version = JSON.parse(readFileSync(join(repo, "bindings", "package.json"), "utf8")).version;
  const [major, minor] = version.split(".").map(Number);
  const dir = scratch(version);
  try {
    release(dir); // the released copy of this version is the baseline
    // A required field added to a request, and a result field removed.
    edit(loginParams(dir), (s) => {
      s.properties.tenant = { type: "string" };
      s.required.push("tenant");
    });
    edit(tokenResult(dir), (s) => {
      delete s.properties.accessToken;
      s.required = s.required.filter((r) => r !== "accessToken");
    });
    let [code, lines] = check(dir);
    assert.equal(code, 1, lines.join("\n"));
    const text = lines.join("\n");
    assert.match(text, /mcpServer\.oauth\.login\.params\.json: \/properties\/tenant: was required, now missing/);
    assert.match(text, /mcpServer\.oauth\.token\.result\.json: \/properties\/accessToken: was required, now missing/);

    // A minor version does not allow it either.
    writeFileSync(join(dir, "bindings", "package.json"), JSON.stringify({ version: `${major}.${minor + 1}.0` }));
    [code] = check(dir);
    assert.equal(code, 1);

    // A new major version does, and says what it breaks.
    writeFileSync(join(dir, "bindings", "package.json"), JSON.stringify({ version: `${major + 1}.0.0` }));
    [code, lines] = check(dir);
    assert.equal(code, 0, lines.join("\n"));
    assert.match(lines.join("\n"), /as its new major version allows/);

    // A version below the last release is refused.
    release(dir);
    writeFileSync(join(dir, "bindings", "package.json"), JSON.stringify({ version }));
    [code, lines] = check(dir);
    assert.equal(code, 1);
    assert.match(lines.join("\n"), /versions only go up/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("additions pass without a new version; a removed method does not", () => {
  const version = JSON.parse(readFileSync(join(repo, "bindings", "package.json"), "utf8")).version;
  const dir = scratch(version);
  try {
    release(dir);
    edit(loginParams(dir), (s) => {
      s.properties.hint = { type: ["string", "null"] };
    });
    edit(tokenResult(dir), (s) => {
      s.properties.issuedAt = { type: "integer" };
      s.required.push("issuedAt");
    });
    let [code, lines] = check(dir);
    assert.equal(code, 0, lines.join("\n"));

    rmSync(join(dir, "schema", "requests", "mcpServer.oauth.cancel.params.json"));
    [code, lines] = check(dir);
    assert.equal(code, 1);
    assert.match(lines.join("\n"), /mcpServer\.oauth\.cancel\.params\.json: removed/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
