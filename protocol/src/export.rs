//! Builds the generated artefacts (JSON Schema bundle, TypeScript, protocol reference) as
//! in-memory files. Writing them is the job of the `generate-protocol` binary; the drift
//! test compares them with the checked-in copies. Everything here is pure, so both always
//! see byte-identical output.

use std::any::TypeId;
use std::collections::{BTreeMap, HashSet};
use std::fmt::Write as _;
use std::path::PathBuf;

use schemars::generate::{SchemaGenerator, SchemaSettings};
use serde_json::{Map, Value, json};
use ts_rs::{TS, TypeVisitor};

use crate::errors::ErrorKind;
use crate::jsonrpc::{ErrorCode, JSONRPC_VERSION};
use crate::methods::{ProtocolVisitor, visit_protocol};

mod client;

/// The command that regenerates every file returned by [`generate_all`].
pub const REGENERATE_COMMAND: &str = "cargo run -p mcp-app-server-protocol --bin generate-protocol";

/// Folders owned entirely by the generator: any file in them that [`generate_all`] does not
/// return is stale.
pub const GENERATED_DIRS: &[&str] = &["schema", BINDINGS_GENERATED_DIR];

/// Copies of the schema as released, one folder per protocol version, written by the release
/// step (`node tests/ts/schema-compat.mjs --release`) and never by the generator: CI compares
/// the generated schema with the newest of them.
pub const RELEASED_SCHEMA_DIR: &str = "schema/released";

/// Where the generated TypeScript lives. The rest of `bindings/` (package.json, the
/// transport, the README) is written by hand and never touched by the generator.
pub const BINDINGS_GENERATED_DIR: &str = "bindings/src/generated";

/// Folders whose files of one extension the generator once wrote at their top level (the
/// TypeScript types sat directly in `bindings/` before the client package). Such files are
/// stale now; sub-folders are not affected.
pub const RETIRED_GENERATED: &[(&str, &str)] = &[("bindings", "ts")];

/// The generated protocol reference (the rest of `docs/` is written by hand).
pub const DOCS_FILE: &str = "docs/protocol.md";

/// The JSON Schema bundle holding every type under `definitions`.
pub const SCHEMA_BUNDLE_FILE: &str = "schema/mcp-app-server.schema.json";

const DRAFT07: &str = "http://json-schema.org/draft-07/schema#";

/// One generated file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GeneratedFile {
    /// Relative to the repository root, `/`-separated.
    pub path: PathBuf,
    pub contents: String,
}

impl GeneratedFile {
    fn new(path: impl Into<PathBuf>, contents: String) -> Self {
        Self {
            path: path.into(),
            contents,
        }
    }
}

/// Why generation failed (a type the TypeScript exporter cannot declare).
#[derive(Debug)]
pub struct GenerateError(String);

impl std::fmt::Display for GenerateError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "generating the protocol files failed: {}", self.0)
    }
}

impl std::error::Error for GenerateError {}

/// File name of the per-method schema: `/` in wire names becomes `.`, so
/// `mcpServer/oauth/login` is `mcpServer.oauth.login`.
pub fn method_file_stem(method: &str) -> String {
    method.replace('/', ".")
}

/// Every generated file (schema, bindings, docs), sorted by path.
pub fn generate_all() -> Result<Vec<GeneratedFile>, GenerateError> {
    let protocol = Protocol::collect()?;
    let mut files = protocol.schema_files();
    files.extend(protocol.binding_files()?);
    files.push(protocol.docs_file());
    files.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(files)
}

// ------------------------------------------------------------------ collection

/// A request or notification as the generators need it.
struct Entry {
    method: &'static str,
    doc: String,
    params: TypeNames,
    /// `None` for notifications.
    result: Option<TypeNames>,
    params_schema: Value,
    result_schema: Option<Value>,
}

/// The name of one Rust type in the schema bundle and in TypeScript.
struct TypeNames {
    schema: String,
    ts: String,
}

/// Everything the three outputs are built from, gathered in one walk of the method table.
struct Protocol {
    requests: Vec<Entry>,
    notifications: Vec<Entry>,
    /// Bundle definitions, in first-seen order (fields keep declaration order, which the
    /// docs use; files are key-sorted when written).
    definitions: Map<String, Value>,
    /// TypeScript file name (e.g. `ClientInfo.ts`) -> contents.
    ts_files: BTreeMap<String, String>,
    /// TypeScript names of every exported type.
    ts_types: Vec<String>,
}

struct Collector {
    bundle: SchemaGenerator,
    ts: TsCollector,
    requests: Vec<Entry>,
    notifications: Vec<Entry>,
}

/// Doc comments arrive with the space after `///` on every line but the first.
fn clean_doc(doc: &str) -> String {
    doc.lines()
        .map(str::trim)
        .collect::<Vec<_>>()
        .join("\n")
        .trim()
        .to_string()
}

fn settings() -> SchemaSettings {
    SchemaSettings::draft07()
}

fn ts_config() -> ts_rs::Config {
    // Not `from_env`: the output must not depend on the caller's environment. Large integers
    // as `number` backs up the `#[ts(type = "number")]` overrides; `.js` import specifiers
    // resolve under both `bundler` and `node16` module resolution.
    ts_rs::Config::new()
        .with_large_int("number")
        .with_import_extension(Some("js"))
}

impl Collector {
    /// Adds `T` to the bundle and returns its definition name.
    fn bundle_type<T: schemars::JsonSchema>(&mut self) -> String {
        let reference = self.bundle.subschema_for::<T>();
        match reference.get("$ref").and_then(Value::as_str) {
            Some(r) => r.trim_start_matches("#/definitions/").to_string(),
            None => {
                // An inlined type (none today): give it a definition of its own anyway so
                // every params/result type is in the bundle.
                let name = T::schema_name().into_owned();
                self.bundle
                    .definitions_mut()
                    .insert(name.clone(), reference.to_value());
                name
            }
        }
    }

    fn type_names<T: schemars::JsonSchema + TS + 'static>(&mut self) -> TypeNames {
        self.ts.visit::<T>();
        TypeNames {
            schema: self.bundle_type::<T>(),
            ts: T::ident(&self.ts.cfg),
        }
    }
}

fn standalone_schema<T: schemars::JsonSchema>(method: &str, role: &str) -> Value {
    let mut schema = settings()
        .into_generator()
        .into_root_schema_for::<T>()
        .to_value();
    if let Some(object) = schema.as_object_mut() {
        object.insert(
            "$comment".into(),
            Value::String(format!(
                "{role} of `{method}`. Generated by `{REGENERATE_COMMAND}`; do not edit."
            )),
        );
    }
    schema
}

impl ProtocolVisitor for Collector {
    fn request<P, R>(&mut self, method: &'static str, doc: &'static str)
    where
        P: schemars::JsonSchema + TS + 'static,
        R: schemars::JsonSchema + TS + 'static,
    {
        let params = self.type_names::<P>();
        let result = self.type_names::<R>();
        self.requests.push(Entry {
            method,
            doc: clean_doc(doc),
            params,
            result: Some(result),
            params_schema: standalone_schema::<P>(method, "Params"),
            result_schema: Some(standalone_schema::<R>(method, "Result")),
        });
    }

    fn notification<P>(&mut self, method: &'static str, doc: &'static str)
    where
        P: schemars::JsonSchema + TS + 'static,
    {
        let params = self.type_names::<P>();
        self.notifications.push(Entry {
            method,
            doc: clean_doc(doc),
            params,
            result: None,
            params_schema: standalone_schema::<P>(method, "Params"),
            result_schema: None,
        });
    }
}

/// Collects the declaration file of a type and of everything it refers to.
struct TsCollector {
    cfg: ts_rs::Config,
    seen: HashSet<TypeId>,
    files: BTreeMap<String, String>,
    names: Vec<String>,
    error: Option<String>,
}

impl TypeVisitor for TsCollector {
    fn visit<T: TS + 'static + ?Sized>(&mut self) {
        let Some(path) = T::output_path() else { return }; // primitives have no file
        if !self.seen.insert(TypeId::of::<T>()) {
            return;
        }
        match T::export_to_string(&self.cfg) {
            Ok(contents) => {
                let file = path.to_string_lossy().replace('\\', "/");
                if self
                    .files
                    .insert(file.clone(), ts_header(&contents))
                    .is_some()
                {
                    // Two Rust types with one TypeScript name would overwrite each other.
                    self.error.get_or_insert_with(|| {
                        format!("two types export to {file}; rename one with #[ts(rename)]")
                    });
                }
                self.names.push(T::ident(&self.cfg));
            }
            Err(e) => {
                self.error
                    .get_or_insert_with(|| format!("{}: {e}", std::any::type_name::<T>()));
            }
        }
        T::visit_dependencies(self);
    }
}

/// Replaces ts-rs's first-line note with one naming our generator.
fn ts_header(contents: &str) -> String {
    let body = match contents.split_once('\n') {
        Some((first, rest)) if first.starts_with("//") => rest,
        _ => contents,
    };
    // ts-rs leaves a space after each `{` and `,` before a field's doc comment.
    let mut out = generated_ts_note();
    for line in body.lines() {
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

fn generated_ts_note() -> String {
    format!("// Generated by `{REGENERATE_COMMAND}` from protocol/src. Do not edit.\n")
}

impl Protocol {
    fn collect() -> Result<Self, GenerateError> {
        let mut c = Collector {
            bundle: settings().into_generator(),
            ts: TsCollector {
                cfg: ts_config(),
                seen: HashSet::new(),
                files: BTreeMap::new(),
                names: Vec::new(),
                error: None,
            },
            requests: Vec::new(),
            notifications: Vec::new(),
        };
        visit_protocol(&mut c);
        // Reachable through notifications already; listed so it stays exported even if no
        // payload mentions it, since every error reply carries it in `data.kind`.
        c.type_names::<ErrorKind>();
        // No answer names it since the login's answer became a union by flow; kept so that
        // frontends importing it still compile.
        c.type_names::<crate::types::LoginGrant>();
        if let Some(e) = c.ts.error {
            return Err(GenerateError(e));
        }
        let mut definitions = c.bundle.take_definitions(true);
        for (name, schema) in envelope_definitions(&c.requests, &c.notifications) {
            definitions.insert(name, schema);
        }
        let mut ts_types = c.ts.names;
        ts_types.sort();
        Ok(Protocol {
            requests: c.requests,
            notifications: c.notifications,
            definitions,
            ts_files: c.ts.files,
            ts_types,
        })
    }
}

// ------------------------------------------------------------------ JSON Schema

/// JSON-RPC envelopes, written by hand: the Rust envelope types carry params as raw JSON,
/// while these tie each method name to its params and result.
fn envelope_definitions(requests: &[Entry], notifications: &[Entry]) -> Vec<(String, Value)> {
    let def = |name: &str| json!({ "$ref": format!("#/definitions/{name}") });
    // draft-07 ignores keywords next to `$ref`, so a described reference wraps it.
    let described =
        |name: &str, description: &str| json!({ "description": description, "allOf": [def(name)] });
    let id = || {
        described(
            "RequestId",
            "Chosen by the client; the reply carries the same id.",
        )
    };
    let method = || json!({ "description": "The method name.", "type": "string" });
    let raw_params = || {
        json!({
            "description": "The method's params object (see the per-method schemas).",
            "type": ["object", "null"]
        })
    };
    let version =
        json!({ "description": "Always \"2.0\".", "type": "string", "const": JSONRPC_VERSION });
    let version_optional = json!({
        "description": "\"2.0\"; may be omitted on input.",
        "type": "string",
        "const": JSONRPC_VERSION
    });

    let typed_requests: Vec<Value> = requests
        .iter()
        .map(|e| {
            let mut required = vec!["id", "method"];
            if has_required_fields(&e.params_schema) {
                required.push("params");
            }
            json!({
                "description": e.doc,
                "type": "object",
                "required": required,
                "properties": {
                    "jsonrpc": version_optional,
                    "id": id(),
                    "method": { "type": "string", "const": e.method },
                    "params": def(&e.params.schema)
                }
            })
        })
        .collect();
    let typed_notifications: Vec<Value> = notifications
        .iter()
        .map(|e| {
            json!({
                "description": e.doc,
                "type": "object",
                "required": ["jsonrpc", "method", "params"],
                "properties": {
                    "jsonrpc": version,
                    "method": { "type": "string", "const": e.method },
                    "params": def(&e.params.schema)
                }
            })
        })
        .collect();

    vec![
        (
            "RequestId".into(),
            json!({
                "description": "A request id: a string or an integer, echoed back unchanged.",
                "type": ["string", "integer"]
            }),
        ),
        (
            "JsonRpcRequest".into(),
            json!({
                "description": "Any request from the client. Absent or null params read as {}.",
                "type": "object",
                "required": ["id", "method"],
                "properties": {
                    "jsonrpc": version_optional,
                    "id": id(),
                    "method": method(),
                    "params": raw_params()
                }
            }),
        ),
        (
            "ClientRequest".into(),
            json!({
                "description": "A request to a known method, with its params checked.",
                "oneOf": typed_requests
            }),
        ),
        (
            "JsonRpcResponse".into(),
            json!({
                "description": "A successful reply; `result` is the method's result type.",
                "type": "object",
                "required": ["jsonrpc", "id", "result"],
                "properties": {
                    "jsonrpc": version,
                    "id": described("RequestId", "The id of the request this answers."),
                    "result": { "description": "The method's result object (see the per-method schemas)." }
                }
            }),
        ),
        (
            "JsonRpcErrorResponse".into(),
            json!({
                "description": "A failed reply. `id` is null when the request id could not be read.",
                "type": "object",
                "required": ["jsonrpc", "id", "error"],
                "properties": {
                    "jsonrpc": version,
                    "id": {
                        "description": "The id of the request this answers; null when it could not be read.",
                        "anyOf": [def("RequestId"), { "type": "null" }]
                    },
                    "error": described("JsonRpcError", "What failed.")
                }
            }),
        ),
        (
            "JsonRpcError".into(),
            json!({
                "description": "The error object of a failed reply.",
                "type": "object",
                "required": ["code", "message"],
                "properties": {
                    "code": {
                        "description": "A standard JSON-RPC code, or -32000..-32099 for application errors.",
                        "type": "integer"
                    },
                    "message": {
                        "description": "What failed and what to do, for people.",
                        "type": "string"
                    },
                    "data": described("JsonRpcErrorData", "Present on application errors.")
                }
            }),
        ),
        (
            "JsonRpcErrorData".into(),
            json!({
                "description": "Extra error details. Application errors always carry `kind`.",
                "type": "object",
                "properties": {
                    "kind": described("ErrorKind", "Stable machine-readable error kind: branch on this."),
                    "useMethod": {
                        "description": "The request method to use instead, when the error names one (`dpopRequired`: `mcpServer/oauth/dpopProof`).",
                        "type": "string"
                    }
                }
            }),
        ),
        (
            "JsonRpcNotification".into(),
            json!({
                "description": "Any notification (no id, no reply).",
                "type": "object",
                "required": ["method"],
                "properties": {
                    "jsonrpc": version_optional,
                    "method": method(),
                    "params": raw_params()
                }
            }),
        ),
        (
            "ServerNotification".into(),
            json!({
                "description": "A notification the daemon sends, with its params checked.",
                "oneOf": typed_notifications
            }),
        ),
    ]
}

fn has_required_fields(schema: &Value) -> bool {
    schema
        .get("required")
        .and_then(Value::as_array)
        .is_some_and(|r| !r.is_empty())
}

/// Recursively sorts object keys so files do not depend on insertion order.
fn sort_keys(value: &Value) -> Value {
    match value {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            Value::Object(
                keys.into_iter()
                    .map(|k| (k.clone(), sort_keys(&map[k])))
                    .collect(),
            )
        }
        Value::Array(items) => Value::Array(items.iter().map(sort_keys).collect()),
        other => other.clone(),
    }
}

fn json_file(path: String, value: &Value) -> GeneratedFile {
    let mut contents =
        serde_json::to_string_pretty(&sort_keys(value)).unwrap_or_else(|_| String::from("{}"));
    contents.push('\n');
    GeneratedFile::new(path, contents)
}

impl Protocol {
    fn schema_files(&self) -> Vec<GeneratedFile> {
        let bundle = json!({
            "$schema": DRAFT07,
            "$comment": format!("Generated by `{REGENERATE_COMMAND}`; do not edit."),
            "title": "McpAppServerProtocol",
            "description": "Every type of the mcp-app-server JSON-RPC protocol. \
                Per-method files are in requests/ and notifications/.",
            "definitions": self.definitions,
        });
        let mut files = vec![json_file(SCHEMA_BUNDLE_FILE.to_string(), &bundle)];
        for e in &self.requests {
            let stem = method_file_stem(e.method);
            files.push(json_file(
                format!("schema/requests/{stem}.params.json"),
                &e.params_schema,
            ));
            if let Some(result) = &e.result_schema {
                files.push(json_file(
                    format!("schema/requests/{stem}.result.json"),
                    result,
                ));
            }
        }
        for e in &self.notifications {
            let stem = method_file_stem(e.method);
            files.push(json_file(
                format!("schema/notifications/{stem}.json"),
                &e.params_schema,
            ));
        }
        files
    }
}

// ------------------------------------------------------------------ TypeScript

/// Writes one TypeScript doc comment, indented.
fn ts_doc(out: &mut String, indent: &str, doc: &str) {
    if doc.is_empty() {
        return;
    }
    let _ = writeln!(out, "{indent}/**");
    for line in doc.lines() {
        let line = line.replace("*/", "*\\/");
        if line.is_empty() {
            let _ = writeln!(out, "{indent} *");
        } else {
            let _ = writeln!(out, "{indent} * {line}");
        }
    }
    let _ = writeln!(out, "{indent} */");
}

impl Protocol {
    fn binding_files(&self) -> Result<Vec<GeneratedFile>, GenerateError> {
        let mut files: Vec<GeneratedFile> = self
            .ts_files
            .iter()
            .map(|(name, contents)| {
                GeneratedFile::new(format!("{BINDINGS_GENERATED_DIR}/{name}"), contents.clone())
            })
            .collect();
        files.push(GeneratedFile::new(
            format!("{BINDINGS_GENERATED_DIR}/index.ts"),
            self.ts_index(),
        ));
        files.extend(client::client_files(self)?);
        Ok(files)
    }

    fn ts_index(&self) -> String {
        let mut out = generated_ts_note();
        out.push_str(
            "//\n// Types of the mcp-app-server JSON-RPC protocol. Import from this file only.\n\n",
        );
        // ErrorKind: used by the envelope types below.
        let mut imported: Vec<&str> = self
            .requests
            .iter()
            .flat_map(|e| [Some(&e.params), e.result.as_ref()])
            .chain(self.notifications.iter().map(|e| Some(&e.params)))
            .flatten()
            .map(|t| t.ts.as_str())
            .chain(["ErrorKind"])
            .collect();
        imported.sort();
        imported.dedup();
        for name in &imported {
            let _ = writeln!(out, "import type {{ {name} }} from \"./{name}.js\";");
        }
        out.push('\n');
        for name in &self.ts_types {
            let _ = writeln!(out, "export type {{ {name} }} from \"./{name}.js\";");
        }

        out.push('\n');
        ts_doc(
            &mut out,
            "",
            "Every request method: its params and its result.",
        );
        out.push_str("export type ClientRequestMap = {\n");
        for e in &self.requests {
            ts_doc(&mut out, "  ", &e.doc);
            let result = e.result.as_ref().map_or("never", |r| r.ts.as_str());
            let _ = writeln!(
                out,
                "  {method:?}: {{ params: {params}; result: {result} }};",
                method = e.method,
                params = e.params.ts
            );
        }
        out.push_str("};\n\n");
        ts_doc(&mut out, "", "Wire name of a request method.");
        out.push_str("export type ClientRequestMethod = keyof ClientRequestMap;\n\n");
        ts_doc(&mut out, "", "Params of request method `M`.");
        out.push_str(
            "export type ClientRequestParams<M extends ClientRequestMethod> = ClientRequestMap[M][\"params\"];\n\n",
        );
        ts_doc(&mut out, "", "Result of request method `M`.");
        out.push_str(
            "export type ClientRequestResult<M extends ClientRequestMethod> = ClientRequestMap[M][\"result\"];\n\n",
        );

        ts_doc(
            &mut out,
            "",
            "Every notification the daemon sends: its params.",
        );
        out.push_str("export type ServerNotificationMap = {\n");
        for e in &self.notifications {
            ts_doc(&mut out, "  ", &e.doc);
            let _ = writeln!(out, "  {:?}: {{ params: {} }};", e.method, e.params.ts);
        }
        out.push_str("};\n\n");
        ts_doc(&mut out, "", "Wire name of a server notification.");
        out.push_str("export type ServerNotificationMethod = keyof ServerNotificationMap;\n\n");
        ts_doc(&mut out, "", "Params of notification `M`.");
        out.push_str(
            "export type ServerNotificationParams<M extends ServerNotificationMethod> = ServerNotificationMap[M][\"params\"];\n\n",
        );

        ts_doc(
            &mut out,
            "",
            "The JSON-RPC error code of each application error kind.",
        );
        out.push_str("export type ErrorKindCodes = {\n");
        for kind in ErrorKind::ALL {
            let _ = writeln!(out, "  {:?}: {};", kind.as_str(), kind.code());
        }
        out.push_str("};\n\n");

        ts_doc(
            &mut out,
            "",
            "Standard JSON-RPC error codes the daemon uses.",
        );
        out.push_str("export type StandardErrorCode =\n");
        let standard = standard_codes();
        for (i, (code, _, _)) in standard.iter().enumerate() {
            let end = if i + 1 == standard.len() { ";" } else { "" };
            let _ = writeln!(out, "  | {code}{end}");
        }
        out.push('\n');

        out.push_str(TS_ENVELOPES);
        out
    }
}

/// Envelope types; generic over the method so a request's params and its reply's result
/// are tied together.
const TS_ENVELOPES: &str = r#"/** A request id: a string or an integer, echoed back unchanged. */
export type RequestId = string | number;

/**
 * A request to method `M` (a union over all methods by default, discriminated by `method`).
 * Absent or null params read as `{}`.
 */
export type JsonRpcRequest<M extends ClientRequestMethod = ClientRequestMethod> = {
  [K in M]: {
    jsonrpc?: "2.0";
    id: RequestId;
    method: K;
    params?: ClientRequestMap[K]["params"];
  };
}[M];

/** A successful reply to method `M`. */
export type JsonRpcSuccess<M extends ClientRequestMethod = ClientRequestMethod> = {
  jsonrpc: "2.0";
  id: RequestId;
  result: ClientRequestMap[M]["result"];
};

/** Extra error details. Application errors always carry `kind`. */
export type JsonRpcErrorData = {
  kind?: ErrorKind;
  /** The request method to use instead, when the error names one (`dpopRequired`: `mcpServer/oauth/dpopProof`). */
  useMethod?: ClientRequestMethod;
  [key: string]: unknown;
};

/** The error object of a failed reply. */
export type JsonRpcError = {
  /** A `StandardErrorCode`, or an application code from `ErrorKindCodes`. */
  code: number;
  /** What failed and what to do, for people. */
  message: string;
  data?: JsonRpcErrorData;
};

/** A failed reply. `id` is null when the request id could not be read. */
export type JsonRpcFailure = {
  jsonrpc: "2.0";
  id: RequestId | null;
  error: JsonRpcError;
};

/** Any reply to method `M`. */
export type JsonRpcResponse<M extends ClientRequestMethod = ClientRequestMethod> =
  | JsonRpcSuccess<M>
  | JsonRpcFailure;

/** A notification `M` sent by the daemon (a union over all by default). */
export type JsonRpcServerNotification<M extends ServerNotificationMethod = ServerNotificationMethod> = {
  [K in M]: {
    jsonrpc: "2.0";
    method: K;
    params: ServerNotificationMap[K]["params"];
  };
}[M];
"#;

// ------------------------------------------------------------------ docs

fn standard_codes() -> [(i64, &'static str, &'static str); 5] {
    [
        (
            ErrorCode::ParseError.code(),
            "Parse error",
            "The message is not valid JSON. `id` is null.",
        ),
        (
            ErrorCode::InvalidRequest.code(),
            "Invalid request",
            "Valid JSON but not a JSON-RPC request (e.g. `method` missing or not a string, \
             an empty batch).",
        ),
        (
            ErrorCode::MethodNotFound.code(),
            "Method not found",
            "No such method.",
        ),
        (
            ErrorCode::InvalidParams.code(),
            "Invalid params",
            "`params` do not fit the method. The message names the field, e.g. \
             ``invalid params at `clientInfo.version`: invalid type: integer `3`, expected a string`` \
             or ``invalid params: missing field `name` ``. Unknown fields are refused too.",
        ),
        (
            ErrorCode::InternalError.code(),
            "Internal error",
            "A bug in the daemon.",
        ),
    ]
}

/// Markdown-safe table cell text.
fn cell(text: &str) -> String {
    text.split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .replace('|', "\\|")
}

/// Markdown anchor of a type heading (`### Name`).
fn anchor(name: &str) -> String {
    format!("#{}", name.to_lowercase())
}

/// A readable type expression for a schema, with links to named types.
fn render_type(schema: &Value) -> String {
    let Some(obj) = schema.as_object() else {
        return "any".into();
    };
    if let Some(r) = obj.get("$ref").and_then(Value::as_str) {
        let name = r.rsplit('/').next().unwrap_or(r);
        return format!("[`{name}`]({})", anchor(name));
    }
    if let Some(c) = obj.get("const") {
        return format!("`{c}`");
    }
    if let Some(values) = obj.get("enum").and_then(Value::as_array) {
        return values
            .iter()
            .map(|v| format!("`{v}`"))
            .collect::<Vec<_>>()
            .join(" | ");
    }
    if let Some([only]) = obj
        .get("allOf")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
    {
        return render_type(only);
    }
    for key in ["anyOf", "oneOf"] {
        if let Some(alts) = obj.get(key).and_then(Value::as_array) {
            return alts.iter().map(render_type).collect::<Vec<_>>().join(" | ");
        }
    }
    let types: Vec<&str> = match obj.get("type") {
        Some(Value::String(t)) => vec![t.as_str()],
        Some(Value::Array(ts)) => ts.iter().filter_map(Value::as_str).collect(),
        _ => return "any".into(),
    };
    types
        .iter()
        .map(|t| match *t {
            "array" => {
                let item = obj
                    .get("items")
                    .map(render_type)
                    .unwrap_or_else(|| "any".into());
                if item.contains(' ') {
                    format!("({item})[]")
                } else {
                    format!("{item}[]")
                }
            }
            "integer" => match obj.get("format").and_then(Value::as_str) {
                Some(f) => format!("integer ({f})"),
                None => "integer".into(),
            },
            other => other.to_string(),
        })
        .collect::<Vec<_>>()
        .join(" | ")
}

/// One alternative of a tagged union: the tag's value, the type of the other fields, the doc.
type TaggedVariant = (String, String, String);

/// An internally tagged union (`{"tag": "value", ...fields of a named type}` per
/// alternative): the tag's name and the alternatives.
fn tagged_variants(schema: &Value) -> Option<(String, Vec<TaggedVariant>)> {
    let alts = schema.get("oneOf")?.as_array()?;
    let mut tag_name: Option<String> = None;
    let mut variants = Vec::new();
    for alt in alts {
        let properties = alt.get("properties")?.as_object()?;
        let [(name, tag)] = properties.iter().collect::<Vec<_>>()[..] else {
            return None;
        };
        let value = tag.get("const")?.as_str()?;
        if tag_name.get_or_insert_with(|| name.clone()) != name {
            return None;
        }
        let fields = match alt
            .get("allOf")
            .and_then(Value::as_array)
            .map(Vec::as_slice)
        {
            Some([only]) => render_type(only),
            _ => "no other fields".to_string(),
        };
        let doc = alt.get("description").and_then(Value::as_str).unwrap_or("");
        variants.push((value.to_string(), fields, doc.to_string()));
    }
    Some((tag_name?, variants))
}

/// Writes the field table of an object schema, the alternatives of a tagged union, or a
/// sentence when it has no fields.
fn field_table(out: &mut String, schema: &Value, empty: &str) {
    if let Some((tag, variants)) = tagged_variants(schema) {
        let _ = writeln!(
            out,
            "One of these objects, told apart by `{tag}`:\n\n| `{tag}` | Other fields | Meaning |\n|---|---|---|"
        );
        for (value, fields, doc) in variants {
            let _ = writeln!(out, "| `{value}` | {} | {} |", cell(&fields), cell(&doc));
        }
        out.push('\n');
        return;
    }
    let properties = schema.get("properties").and_then(Value::as_object);
    let Some(properties) = properties.filter(|p| !p.is_empty()) else {
        let _ = writeln!(out, "{empty}\n");
        return;
    };
    let required: Vec<&str> = schema
        .get("required")
        .and_then(Value::as_array)
        .map(|r| r.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    out.push_str("| Field | Type | Required | Description |\n|---|---|---|---|\n");
    for (name, field) in properties {
        let description = field
            .get("description")
            .and_then(Value::as_str)
            .unwrap_or("");
        let _ = writeln!(
            out,
            "| `{name}` | {} | {} | {} |",
            cell(&render_type(field)),
            if required.contains(&name.as_str()) {
                "yes"
            } else {
                "no"
            },
            cell(description)
        );
    }
    if schema.get("additionalProperties") == Some(&Value::Bool(false)) {
        out.push_str("\nUnknown fields are refused (-32602).\n");
    }
    out.push('\n');
}

/// The variants of a string enum schema: `(value, description)`.
fn enum_variants(schema: &Value) -> Option<Vec<(String, String)>> {
    if let Some(values) = schema.get("enum").and_then(Value::as_array) {
        return Some(
            values
                .iter()
                .map(|v| (v.to_string(), String::new()))
                .collect(),
        );
    }
    let alts = schema.get("oneOf").and_then(Value::as_array)?;
    alts.iter()
        .map(|alt| {
            let value = alt.get("const").or_else(|| {
                alt.get("enum")
                    .and_then(Value::as_array)
                    .filter(|e| e.len() == 1)?
                    .first()
            })?;
            let doc = alt.get("description").and_then(Value::as_str).unwrap_or("");
            Some((value.to_string(), doc.to_string()))
        })
        .collect()
}

impl Protocol {
    fn definition(&self, name: &str) -> &Value {
        static EMPTY: Value = Value::Null;
        self.definitions.get(name).unwrap_or(&EMPTY)
    }

    fn docs_file(&self) -> GeneratedFile {
        let mut out = String::new();
        self.docs_intro(&mut out);
        self.docs_requests(&mut out);
        self.docs_notifications(&mut out);
        self.docs_errors(&mut out);
        self.docs_types(&mut out);
        GeneratedFile::new(DOCS_FILE, out.trim_end().to_string() + "\n")
    }

    fn docs_intro(&self, out: &mut String) {
        let _ = write!(
            out,
            "<!-- Generated by `{REGENERATE_COMMAND}` from protocol/src. Do not edit. -->\n\n\
# mcp-app-server protocol reference

mcp-app-server is a daemon that frontends spawn and drive over **stdio** with **JSON-RPC 2.0**.
This page lists every request, notification and error. It is generated from the same Rust
table that the daemon dispatches on, so it cannot drift from the implementation.

Machine-readable copies of the same information:

- `schema/mcp-app-server.schema.json`: a JSON Schema (draft-07) bundle with every type under
  `definitions`, including the JSON-RPC envelopes (`ClientRequest` and `ServerNotification`
  tie each method name to its params).
- `schema/requests/<method>.params.json` and `schema/requests/<method>.result.json`: one
  standalone schema per request's params and result; `schema/notifications/<method>.json`:
  the params of each notification. `<method>` is the wire name with `/` replaced by `.`
  (`mcpServer/oauth/login` -> `mcpServer.oauth.login.params.json`).
- `bindings/`: the npm package `@mcp-app-server/protocol`: these types (generated into
  `bindings/src/generated/`, one file per type, plus `index.ts` with `ClientRequestMap`,
  `ServerNotificationMap`, `ErrorKindCodes` and typed envelopes) and `McpAppServerClient`, a
  typed client with one method per request and one `on...` subscription per notification
  (generated from the same table) over a small hand-written transport. See
  [frontends.md](frontends.md) and `bindings/README.md`:

```ts
import {{ spawnAppServer }} from \"@mcp-app-server/protocol\";

const client = spawnAppServer({{ bin: \"mcp-app-server\" }});
await client.initialize({{ clientInfo: {{ name: \"my-ide\", version: \"1.0.0\" }} }});
const {{ data }} = await client.listMcpServerStatus();
```

## Regenerating

After changing anything in `protocol/src`, run

```sh
{REGENERATE_COMMAND}
```

and commit `schema/`, `bindings/src/generated/` and `docs/protocol.md`. `cargo test -p mcp-app-server-protocol`
fails while the checked-in files differ from what the code generates. `.ci/check-generated.sh`
also type-checks the bindings with `tsc` and validates every schema with ajv.

## Versions

This is version **{version}** of the protocol (semver). The daemon sends it as
`protocolVersion` in the answer to `initialize`; the npm package carries the same version
and exports it as `PROTOCOL_VERSION`. A frontend works with any daemon of the same major
version. A minor version only adds: fields in results and notifications, optional fields in
params, methods, notifications, error kinds, enum values and union variants, so a frontend
treats a value it does not know (an enum value, a union's tag) as one it cannot handle
rather than as an error of the daemon. A major version may remove or narrow. `CHANGELOG.md`
at the repository root says what each version added or broke.

CI holds the schema to that: `schema/released/<version>/` keeps the schema of each release,
and `tests/ts/schema-compat.mjs` (run by `.ci/check-generated.sh`) fails when `schema/`
would break a frontend written for the newest of them (a field removed or narrowed in a
result, a field removed, narrowed or newly required in params, an enum value removed from
params, a type changed, a method removed) unless the major version moved.

## Conventions

- Field names are camelCase. Unknown fields in request params are refused.
- Optional fields may be omitted. In request params an optional field may also be `null`
  (TypeScript `field?: T | null`); in results and notifications optional fields are simply
  absent when unset (TypeScript `field?: T`).
- Integers are plain JSON numbers (TypeScript `number`, never `bigint`). Times are seconds
  since the Unix epoch.
- Absent or `null` `params` read as `{{}}`.
- A server may hold several accounts. `login`, `token`, `dpopProof`, `challenge`, `logout`
  and `mcpServerStatus/list` take an optional `account`, a label the frontend chooses (1 to
  256 bytes of printable text, such as the user's e-mail address); without it they are for
  the server's account used last. Status entries list every account (`accounts`).

## Transport and framing

The daemon reads requests on **stdin** and writes replies and notifications on **stdout**;
logs go to stderr. Two framings are accepted, chosen per connection from the first
non-blank line the client sends:

- **Content-Length headers**, as LSP clients and `vscode-jsonrpc` send:
  `Content-Length: <bytes>\\r\\n\\r\\n<json>`. Chosen only when the first line is a
  `Content-Length:` or `Content-Type:` header, in any letter case.
- **Newline-delimited JSON**: one JSON message per line. Chosen for any other first line,
  JSON or not: a first line that is not JSON (a typo in a hand-typed session) is answered
  with a parse error (-32700) and the next line is read as usual.

Replies use the framing the client chose. `\"jsonrpc\": \"2.0\"` is sent on every message and may
be omitted on input. Batches (JSON arrays) are answered as batches. A message over the size
limit is refused with `messageTooLarge`.

## Handshake

1. The client sends `initialize` first, with `clientInfo` and optionally `capabilities`:
   `optOutNotificationMethods`, the notification methods this connection does not want (it
   will not receive them; other connections still do), and `dpop: true` when it sends DPoP
   proofs (then it is handed DPoP-bound tokens and the logins it starts may bind theirs;
   without it, a DPoP-bound token is refused with `dpopRequired`), and `clientCertificate:
   true` when it presents a server's configured client certificate on its own requests
   (then it is handed tokens bound to that certificate, with `certificateBinding` naming the
   files; without it, such a token is refused with `certificateRequired`).
2. The result gives `serverInfo`, the `protocolVersion`, and every request and notification
   method the daemon knows.
3. The client may then send the `initialized` notification (accepted, not required).

Any other request before `initialize` fails with `notInitialized` ({not_init}); a second
`initialize` on the same connection fails with `alreadyInitialized` ({already}).
Notifications are broadcast to every initialized connection except those that opted out.

```json
{{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"initialize\",\"params\":{{\"clientInfo\":{{\"name\":\"my-ide\",\"version\":\"1.0.0\"}},\"capabilities\":{{\"optOutNotificationMethods\":[\"mcpServer/authStatus/changed\"]}}}}}}
```

",
            version = crate::PROTOCOL_VERSION,
            not_init = ErrorKind::NotInitialized.code(),
            already = ErrorKind::AlreadyInitialized.code(),
        );
        out.push_str("## Requests (client -> daemon)\n\n| Method | Summary |\n|---|---|\n");
        for e in &self.requests {
            let _ = writeln!(
                out,
                "| [`{}`](#{}) | {} |",
                e.method,
                method_anchor(e.method),
                cell(first_sentence(&e.doc))
            );
        }
        out.push_str("\n## Notifications (daemon -> client)\n\n| Method | Summary |\n|---|---|\n");
        for e in &self.notifications {
            let _ = writeln!(
                out,
                "| [`{}`](#{}) | {} |",
                e.method,
                method_anchor(e.method),
                cell(first_sentence(&e.doc))
            );
        }
        out.push('\n');
    }

    fn docs_requests(&self, out: &mut String) {
        out.push_str("## Request reference\n\n");
        for e in &self.requests {
            let stem = method_file_stem(e.method);
            let _ = write!(out, "### `{}`\n\n{}\n\n", e.method, e.doc);
            let params = self.definition(&e.params.schema);
            let _ = writeln!(
                out,
                "**Params**: `{}` (schema `schema/requests/{stem}.params.json`)\n",
                e.params.schema
            );
            type_doc(out, params);
            field_table(out, params, "No params: send `{}` or omit `params`.");
            if let Some(result) = &e.result {
                let schema = self.definition(&result.schema);
                let _ = writeln!(
                    out,
                    "**Result**: `{}` (schema `schema/requests/{stem}.result.json`)\n",
                    result.schema
                );
                type_doc(out, schema);
                field_table(out, schema, "An empty object `{}`.");
            }
        }
    }

    fn docs_notifications(&self, out: &mut String) {
        out.push_str("## Notification reference\n\n");
        for e in &self.notifications {
            let stem = method_file_stem(e.method);
            let _ = write!(out, "### `{}`\n\n{}\n\n", e.method, e.doc);
            let params = self.definition(&e.params.schema);
            let _ = writeln!(
                out,
                "**Params**: `{}` (schema `schema/notifications/{stem}.json`)\n",
                e.params.schema
            );
            type_doc(out, params);
            field_table(out, params, "No params.");
        }
    }

    /// Which method a payload type belongs to, for the short entries in the type list.
    fn payload_role(&self, name: &str) -> Option<String> {
        let link = |e: &Entry| format!("[`{}`](#{})", e.method, method_anchor(e.method));
        self.requests
            .iter()
            .find_map(|e| {
                if e.params.schema == name {
                    Some(format!("Params of {}", link(e)))
                } else if e.result.as_ref().is_some_and(|r| r.schema == name) {
                    Some(format!("Result of {}", link(e)))
                } else {
                    None
                }
            })
            .or_else(|| {
                self.notifications
                    .iter()
                    .find(|e| e.params.schema == name)
                    .map(|e| format!("Params of notification {}", link(e)))
            })
    }

    fn docs_errors(&self, out: &mut String) {
        out.push_str(
            "## Errors\n\nA failed request gets `{\"jsonrpc\":\"2.0\",\"id\":<id or null>,\"error\":{\"code\",\"message\",\"data\"?}}`.\n\
             `message` is for people (what failed, the URL involved, what to do); branch on `code`\n\
             and `data.kind`, never on the message.\n\n### Standard JSON-RPC errors\n\n\
             | Code | Name | When |\n|---|---|---|\n",
        );
        for (code, name, when) in standard_codes() {
            let _ = writeln!(out, "| {code} | {name} | {} |", cell(when));
        }
        out.push_str(
            "\n### Application errors (`data.kind`)\n\n\
             Application errors use codes -32000..-32099 and carry a stable machine-readable\n\
             `data.kind` (type [`ErrorKind`](#errorkind)); the same kinds appear in\n\
             `mcpServer/oauthLogin/completed` as `errorKind`.\n\n\
             ```json\n{\"jsonrpc\":\"2.0\",\"id\":3,\"error\":{\"code\":-32010,\"message\":\"no MCP server named `linear` in config.toml\",\"data\":{\"kind\":\"serverNotFound\"}}}\n```\n\n\
             | `data.kind` | Code | Meaning |\n|---|---|---|\n",
        );
        for kind in ErrorKind::ALL {
            let _ = writeln!(
                out,
                "| `{}` | {} | {} |",
                kind.as_str(),
                kind.code(),
                cell(kind.description())
            );
        }
        out.push('\n');
    }

    fn docs_types(&self, out: &mut String) {
        out.push_str(
            "## Types\n\nEvery named type in the schema bundle, in alphabetical order. Params and \
             results are described with their method above.\n\n",
        );
        let mut names: Vec<&String> = self.definitions.keys().collect();
        names.sort();
        for name in names {
            let schema = &self.definitions[name];
            let _ = write!(out, "### {name}\n\n");
            if let Some(role) = self.payload_role(name) {
                let _ = writeln!(out, "{role}.\n");
                continue;
            }
            type_doc(out, schema);
            if name == "ErrorKind" {
                out.push_str(
                    "A string: one of the `data.kind` values listed under \
                     [Application errors](#application-errors-datakind).\n\n",
                );
            } else if let Some(variants) = enum_variants(schema) {
                out.push_str("A string, one of:\n\n| Value | Meaning |\n|---|---|\n");
                for (value, doc) in variants {
                    let _ = writeln!(out, "| `{value}` | {} |", cell(&doc));
                }
                out.push('\n');
            } else if let Some(methods) = envelope_methods(schema) {
                out.push_str("One object per method, told apart by `method`:\n\n| `method` | `params` |\n|---|---|\n");
                for (method, params) in methods {
                    let _ = writeln!(out, "| `{method}` | {} |", cell(&params));
                }
                out.push('\n');
            } else if schema.get("properties").is_some()
                || schema.get("type") == Some(&json!("object"))
            {
                field_table(out, schema, "An empty object `{}`.");
            } else {
                let _ = writeln!(out, "Type: {}\n", render_type(schema));
            }
        }
    }
}

/// For `ClientRequest`/`ServerNotification`: each alternative's method and params type.
fn envelope_methods(schema: &Value) -> Option<Vec<(String, String)>> {
    let alts = schema.get("oneOf")?.as_array()?;
    alts.iter()
        .map(|alt| {
            let props = alt.get("properties")?;
            let method = props.pointer("/method/const")?.as_str()?.to_string();
            let params = props
                .get("params")
                .map(render_type)
                .unwrap_or_else(|| "none".into());
            Some((method, params))
        })
        .collect()
}

fn type_doc(out: &mut String, schema: &Value) {
    if let Some(d) = schema.get("description").and_then(Value::as_str) {
        let _ = writeln!(out, "{}\n", d.trim());
    }
}

fn first_sentence(doc: &str) -> &str {
    let doc = doc.trim();
    match doc.find(". ") {
        Some(i) => &doc[..=i],
        None => doc,
    }
}

/// GitHub's heading anchor for `### \`a/b\``: lowercase, punctuation other than `-` dropped.
fn method_anchor(method: &str) -> String {
    method
        .chars()
        .filter(|c| c.is_alphanumeric() || *c == '-' || *c == '_')
        .flat_map(char::to_lowercase)
        .collect()
}
