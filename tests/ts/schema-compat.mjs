// Compares the generated JSON Schema (schema/) with the last released copy
// (schema/released/<version>/) and fails when a change would break an existing frontend,
// unless the protocol's major version moved. Additions pass.
//
// Usage: node tests/ts/schema-compat.mjs [repo root]            check
//        node tests/ts/schema-compat.mjs [repo root] --release  copy schema/ to
//                                                               schema/released/<version>/
//
// The version is the npm package's (bindings/package.json), which a Rust test keeps equal to
// the protocol's (`PROTOCOL_VERSION`, sent in the answer to `initialize`).
//
// What breaks a frontend depends on who reads the value:
// - Request params are read by the daemon: every params object an old frontend could send
//   must still be accepted (no new required field, no field removed while unknown fields
//   are refused, no enum value removed, no type narrowed).
// - Results and notifications are read by the frontend: everything the daemon may now send
//   must fit what an old frontend expects (no field removed or made optional, no type
//   widened or changed). Two additions are allowed as additions: a new enum value and a new
//   variant of a tagged union (a new value of its tag). Frontends treat values they do not
//   know as something they cannot handle (protocol.md says so).
// Both come down to one question, "is every value of schema A valid under schema B?",
// answered conservatively on the subset of JSON Schema the generator writes. A property that
// one side does not declare is taken as absent there.

import { cpSync, existsSync, mkdirSync, readFileSync, readdirSync, rmSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";

/** Parses "1.2.3" into [1, 2, 3]; throws on anything else. */
export function parseVersion(text) {
  const m = /^(\d+)\.(\d+)\.(\d+)$/.exec(String(text).trim());
  if (!m) throw new Error(`not a semver version (MAJOR.MINOR.PATCH): ${JSON.stringify(text)}`);
  return m.slice(1).map(Number);
}

export function compareVersions(a, b) {
  const [x, y] = [parseVersion(a), parseVersion(b)];
  for (let i = 0; i < 3; i++) if (x[i] !== y[i]) return x[i] - y[i];
  return 0;
}

/** A reader of one schema document: resolves its local `$ref`s. */
class Doc {
  constructor(root) {
    this.root = root;
  }

  resolve(schema, seen = new Set()) {
    let s = schema;
    while (s && typeof s === "object") {
      if (typeof s.$ref === "string") {
        if (!s.$ref.startsWith("#/")) throw new Error(`only local $ref is supported: ${s.$ref}`);
        if (seen.has(s.$ref)) throw new Error(`$ref cycle at ${s.$ref}`);
        seen.add(s.$ref);
        s = s.$ref
          .slice(2)
          .split("/")
          .reduce((node, key) => node?.[key.replace(/~1/g, "/").replace(/~0/g, "~")], this.root);
        if (s === undefined) throw new Error(`unresolved $ref ${schema.$ref}`);
        continue;
      }
      // A described reference: `{description, allOf: [X]}` is X.
      if (Array.isArray(s.allOf) && s.allOf.length === 1 && !s.properties && !s.type) {
        s = s.allOf[0];
        continue;
      }
      break;
    }
    // An object with more of its fields in `allOf` (a tagged union's variant: the tag here,
    // the variant's type there): one object with all of them.
    if (s && typeof s === "object" && Array.isArray(s.allOf)) {
      const { allOf, ...rest } = s;
      const merged = { ...rest, properties: { ...(rest.properties ?? {}) }, required: [...(rest.required ?? [])] };
      for (const part of allOf) {
        const p = this.resolve(part, new Set(seen));
        Object.assign(merged.properties, p.properties ?? {});
        merged.required.push(...(p.required ?? []).filter((r) => !merged.required.includes(r)));
        if (p.additionalProperties === false) merged.additionalProperties = false;
        if (merged.type === undefined && p.type !== undefined) merged.type = p.type;
      }
      return merged;
    }
    return s;
  }
}

const ANNOTATIONS = new Set(["description", "title", "$comment", "$schema", "definitions", "default", "examples", "format"]);

function isAny(s) {
  return s === true || (s && typeof s === "object" && Object.keys(s).every((k) => ANNOTATIONS.has(k)));
}

/** The JSON types a schema allows, or null for "not restricted". */
function types(s) {
  if (s.const !== undefined) return [jsonType(s.const)];
  if (Array.isArray(s.enum)) return [...new Set(s.enum.map(jsonType))];
  if (s.type === undefined) return s.properties ? ["object"] : null;
  return Array.isArray(s.type) ? s.type : [s.type];
}

function jsonType(v) {
  if (v === null) return "null";
  if (Array.isArray(v)) return "array";
  if (Number.isInteger(v)) return "integer";
  return typeof v;
}

function typeWithin(t, allowed) {
  return allowed.includes(t) || (t === "integer" && allowed.includes("number"));
}

/** The values a schema allows, when it lists them (`const` or `enum`). */
function values(s) {
  if (s.const !== undefined) return [s.const];
  if (Array.isArray(s.enum)) return s.enum;
  return null;
}

const show = (v) => JSON.stringify(v);

/** Every value listed by a schema and by the alternatives of its unions, at any depth. */
function allValues(doc, schema, depth = 0) {
  const s = doc.resolve(schema);
  const own = values(s) ?? [];
  if (depth > 8) return own;
  const alts = [...(s.oneOf ?? []), ...(s.anyOf ?? [])];
  return [...own, ...alts.flatMap((alt) => allValues(doc, alt, depth + 1))];
}

/** The name and value of a tag property common to the alternatives: `{flow: {const: "x"}}`. */
function tagOf(doc, alt) {
  const s = doc.resolve(alt);
  const found = [];
  for (const [name, prop] of Object.entries(s.properties ?? {})) {
    const p = doc.resolve(prop);
    const v = values(p);
    if (v && v.length === 1 && typeof v[0] === "string" && (s.required ?? []).includes(name)) found.push([name, v[0]]);
  }
  return found;
}

/**
 * Is every value valid under `a` (in document `da`) also valid under `b` (in `db`)?
 * Pushes what is not onto `problems`, each with its JSON path. `open` lets new enum values
 * and new union tags in `a` pass (results and notifications).
 */
function within(da, a, db, b, path, problems, open) {
  a = da.resolve(a);
  b = db.resolve(b);
  if (isAny(b)) return;
  if (isAny(a)) {
    problems.push(`${path}: was restricted, now accepts anything`);
    return;
  }
  // A union on the left: each alternative must fit.
  for (const key of ["oneOf", "anyOf"]) {
    if (Array.isArray(a[key])) {
      const bAlts = Array.isArray(b.oneOf) ? b.oneOf : Array.isArray(b.anyOf) ? b.anyOf : null;
      const knownTags = bAlts ? new Set(bAlts.flatMap((alt) => tagOf(db, alt).map(([n, v]) => `${n}=${v}`))) : new Set();
      const knownValues = new Set(allValues(db, b).map(show));
      a[key].forEach((alt, i) => {
        const tags = tagOf(da, alt).map(([n, v]) => `${n}=${v}`);
        // A new variant (a tag value the old union did not have) is an addition.
        if (open && knownTags.size > 0 && tags.length > 0 && !tags.some((t) => knownTags.has(t))) return;
        // So is a new value of an enum written as one `const` per value.
        const own = values(da.resolve(alt));
        if (open && own !== null && knownValues.size > 0 && !own.some((v) => knownValues.has(show(v)))) return;
        within(da, alt, db, b, `${path}/${key}/${i}`, problems, open);
      });
      return;
    }
  }
  // A union on the right: some alternative must take all of `a`. Alternatives with the same
  // tag value as `a` are tried first, so the problems reported are the relevant ones.
  for (const key of ["oneOf", "anyOf"]) {
    if (Array.isArray(b[key])) {
      const aTags = new Set(tagOf(da, a).map(([n, v]) => `${n}=${v}`));
      const ranked = [...b[key].entries()].sort(([, x], [, y]) => {
        const hit = (alt) => tagOf(db, alt).some(([n, v]) => aTags.has(`${n}=${v}`));
        return Number(hit(y)) - Number(hit(x));
      });
      let best = null;
      for (const [i, alt] of ranked) {
        const local = [];
        within(da, a, db, alt, `${path}/${key}/${i}`, local, open);
        if (local.length === 0) return;
        if (best === null) best = local;
      }
      // A nullable field (`anyOf: [T, {type: "null"}]`) against a plain `a`: the first
      // ranked alternative's problems say it best.
      problems.push(...(best ?? [`${path}: no alternative of the old union takes it`]));
      return;
    }
  }

  const ta = types(a);
  const tb = types(b);
  if (tb !== null) {
    if (ta === null) {
      problems.push(`${path}: type was ${tb.join("|")}, now unrestricted`);
      return;
    }
    const extra = ta.filter((t) => !typeWithin(t, tb));
    if (extra.length > 0) {
      problems.push(`${path}: type ${ta.join("|")} does not fit ${tb.join("|")} (${extra.join(", ")} is new)`);
      return;
    }
  }
  const vb = values(b);
  if (vb !== null) {
    const va = values(a);
    if (va === null) {
      // Only the null alternative of a nullable enum can be left: `type: ["string","null"]`
      // against an enum is a widening.
      problems.push(`${path}: was one of ${vb.map(show).join(", ")}, now any ${ta?.join("|")}`);
      return;
    }
    const missing = va.filter((v) => !vb.some((w) => show(w) === show(v)));
    // A `const` is a tag or one value of an enum's union: always exact. A listed `enum` in
    // a result may gain values.
    if (missing.length > 0 && (!open || b.const !== undefined)) {
      problems.push(`${path}: value ${missing.map(show).join(", ")} is not among ${vb.map(show).join(", ")}`);
    }
  }
  if ((ta ?? []).includes("array") && a.items !== undefined && b.items !== undefined) {
    within(da, a.items, db, b.items, `${path}/items`, problems, open);
  }
  if ((ta ?? []).includes("object") || a.properties || b.properties) {
    const aProps = a.properties ?? {};
    const bProps = b.properties ?? {};
    const aReq = new Set(a.required ?? []);
    for (const name of b.required ?? []) {
      if (!aReq.has(name)) {
        problems.push(
          name in aProps
            ? `${path}/properties/${name}: was required, now optional`
            : `${path}/properties/${name}: was required, now missing`,
        );
      }
    }
    if (b.additionalProperties === false) {
      for (const name of Object.keys(aProps)) {
        if (!(name in bProps)) problems.push(`${path}/properties/${name}: not accepted (unknown fields are refused)`);
      }
      if (a.additionalProperties !== false) problems.push(`${path}: unknown fields were accepted, now refused`);
    }
    for (const [name, prop] of Object.entries(aProps)) {
      if (name in bProps) within(da, prop, db, bProps[name], `${path}/properties/${name}`, problems, open);
    }
  }
}

/**
 * The changes from `oldSchema` to `newSchema` that would break a frontend. `role` is
 * "params" (read by the daemon) or "result" / "notification" (read by the frontend).
 */
export function breakingChanges(oldSchema, newSchema, role) {
  const problems = [];
  const od = new Doc(oldSchema);
  const nd = new Doc(newSchema);
  if (role === "params") within(od, oldSchema, nd, newSchema, "", problems, false);
  else within(nd, newSchema, od, oldSchema, "", problems, true);
  return problems.map((p) => p || "(root)");
}

/** The JSON files under `dir`, relative to it; the released copies are not part of a schema. */
function listJson(dir, top = true) {
  if (!existsSync(dir)) return [];
  return readdirSync(dir, { withFileTypes: true })
    .filter((e) => !(top && e.isDirectory() && e.name === "released"))
    .flatMap((e) => (e.isDirectory() ? listJson(join(dir, e.name), false).map((f) => join(e.name, f)) : e.name.endsWith(".json") ? [e.name] : []))
    .sort();
}

/** The role of a per-method schema file, from its place. */
function roleOf(file) {
  if (file.startsWith("notifications/")) return "notification";
  if (file.endsWith(".params.json")) return "params";
  if (file.endsWith(".result.json")) return "result";
  return null;
}

/** Every breaking change between two schema folders (per-method files only). */
export function compareSchemaDirs(oldDir, newDir) {
  const breaks = [];
  const newFiles = new Set(listJson(newDir));
  for (const file of listJson(oldDir)) {
    const role = roleOf(file.replace(/\\/g, "/"));
    if (role === null) continue;
    const name = file.replace(/\\/g, "/");
    if (!newFiles.has(file)) {
      breaks.push(`${name}: removed (the method or notification is gone)`);
      continue;
    }
    const read = (dir) => JSON.parse(readFileSync(join(dir, file), "utf8"));
    for (const p of breakingChanges(read(oldDir), read(newDir), role)) breaks.push(`${name}: ${p}`);
  }
  return breaks;
}

/** The released versions under `schema/released/`, oldest first. */
export function releasedVersions(schemaDir) {
  const dir = join(schemaDir, "released");
  if (!existsSync(dir)) return [];
  return readdirSync(dir, { withFileTypes: true })
    .filter((e) => e.isDirectory())
    .map((e) => e.name)
    .filter((v) => {
      try {
        parseVersion(v);
        return true;
      } catch {
        return false;
      }
    })
    .sort(compareVersions);
}

/** Runs the check; returns [exit code, lines to print]. */
export function check(root) {
  const version = JSON.parse(readFileSync(join(root, "bindings", "package.json"), "utf8")).version;
  parseVersion(version);
  const schemaDir = join(root, "schema");
  const released = releasedVersions(schemaDir).filter((v) => compareVersions(v, version) <= 0);
  const newer = releasedVersions(schemaDir).filter((v) => compareVersions(v, version) > 0);
  if (newer.length > 0) {
    return [1, [`the protocol version ${version} is older than the released ${newer.join(", ")}: versions only go up`]];
  }
  if (released.length === 0) {
    return [1, [`no released schema under schema/released/ at or below ${version}: run \`node tests/ts/schema-compat.mjs --release\` when releasing`]];
  }
  const last = released[released.length - 1];
  const breaks = compareSchemaDirs(join(schemaDir, "released", last), schemaDir);
  if (breaks.length === 0) return [0, [`schema/ is compatible with the released ${last} (protocol ${version})`]];
  const list = breaks.map((b) => `  ${b}`);
  if (parseVersion(version)[0] > parseVersion(last)[0]) {
    return [0, [`protocol ${version} breaks frontends of ${last}, as its new major version allows:`, ...list]];
  }
  return [
    1,
    [
      `schema/ would break frontends written for the released ${last} (protocol ${version}):`,
      ...list,
      "Make the change compatible (add instead of change), or move the major version (bindings/package.json,",
      "PROTOCOL_VERSION in protocol/src/lib.rs) and say what broke in CHANGELOG.md.",
    ],
  ];
}

/** Copies the generated schema to schema/released/<version>/ (the release step). */
export function release(root) {
  const version = JSON.parse(readFileSync(join(root, "bindings", "package.json"), "utf8")).version;
  parseVersion(version);
  const schemaDir = join(root, "schema");
  const target = join(schemaDir, "released", version);
  rmSync(target, { recursive: true, force: true });
  mkdirSync(target, { recursive: true });
  for (const entry of readdirSync(schemaDir)) {
    if (entry === "released") continue;
    cpSync(join(schemaDir, entry), join(target, entry), { recursive: true });
  }
  return relative(root, target);
}

const invoked = process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url);
if (invoked) {
  const args = process.argv.slice(2);
  const root = resolve(args.find((a) => !a.startsWith("--")) ?? join(dirname(fileURLToPath(import.meta.url)), "..", ".."));
  if (args.includes("--release")) {
    console.log(`wrote ${release(root)}`);
  } else {
    const [code, lines] = check(root);
    for (const line of lines) (code === 0 ? console.log : console.error)(line);
    process.exit(code);
  }
}
