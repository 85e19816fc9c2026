//! The generated half of the TypeScript client package: `McpAppServerClient` with one typed
//! method per request and one `on...` subscription per notification, and the method lists
//! the transport needs at run time. The base class and the transport are hand-written
//! (`bindings/src/*.ts`); everything that depends on the method table is generated here, so
//! a method added to the table appears in the client without a hand edit.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use super::{
    BINDINGS_GENERATED_DIR, Entry, GenerateError, GeneratedFile, Protocol, generated_ts_note,
    has_required_fields, ts_doc,
};
use crate::errors::ErrorKind;

/// Members of the hand-written `ClientBase`; a generated name must not shadow one.
const BASE_MEMBERS: &[&str] = &[
    "constructor",
    "request",
    "notify",
    "on",
    "waitFor",
    "onClose",
    "closed",
    "dispose",
    "disposed",
];

/// `McpServerStatus` -> `mcpServerStatus`.
fn lower_first(name: &str) -> String {
    let mut chars = name.chars();
    match chars.next() {
        Some(first) => first.to_lowercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// `mcpServer/oauth/login` -> `McpServerOauthLogin`: the fallback when a payload type does
/// not follow the `<Name>Params` / `<Name>Notification` convention.
fn pascal_from_wire(method: &str) -> String {
    method
        .split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|s| !s.is_empty())
        .map(|segment| {
            let mut chars = segment.chars();
            match chars.next() {
                Some(first) => first.to_uppercase().chain(chars).collect::<String>(),
                None => String::new(),
            }
        })
        .collect()
}

/// The stem shared by a payload type and the client member: the type name without its role
/// suffix and without the `Oauth` prefix that every login-related type carries
/// (`OauthLoginParams` -> `Login`, `ListMcpServerStatusParams` -> `ListMcpServerStatus`,
/// `OauthLoginCompletedNotification` -> `LoginCompleted`).
fn stem(type_name: &str, suffix: &str, method: &str) -> String {
    match type_name.strip_suffix(suffix).filter(|s| !s.is_empty()) {
        Some(base) => match base.strip_prefix("Oauth") {
            Some(rest) if rest.starts_with(|c: char| c.is_ascii_uppercase()) => rest.to_string(),
            _ => base.to_string(),
        },
        None => pascal_from_wire(method),
    }
}

/// The client method for a request: `mcpServer/oauth/login` (`OauthLoginParams`) -> `login`.
pub(super) fn request_member(e: &Entry) -> String {
    lower_first(&stem(&e.params.ts, "Params", e.method))
}

/// The subscription for a notification: `mcpServer/oauthLogin/completed`
/// (`OauthLoginCompletedNotification`) -> `onLoginCompleted`.
pub(super) fn notification_member(e: &Entry) -> String {
    format!("on{}", stem(&e.params.ts, "Notification", e.method))
}

/// Every (member, method) pair, refusing duplicates and names the base class uses.
fn members(protocol: &Protocol) -> Result<Vec<(String, &Entry, bool)>, GenerateError> {
    let mut seen: BTreeMap<String, &str> = BTreeMap::new();
    let mut out = Vec::new();
    let all = protocol
        .requests
        .iter()
        .map(|e| (request_member(e), e, true))
        .chain(
            protocol
                .notifications
                .iter()
                .map(|e| (notification_member(e), e, false)),
        );
    for (name, e, is_request) in all {
        if BASE_MEMBERS.contains(&name.as_str()) {
            return Err(GenerateError(format!(
                "`{}` would get the client method `{name}`, which the hand-written ClientBase \
                 already has; rename its payload type `{}`",
                e.method, e.params.ts
            )));
        }
        if let Some(other) = seen.insert(name.clone(), e.method) {
            return Err(GenerateError(format!(
                "`{other}` and `{}` would both get the client method `{name}`; give one of \
                 them a payload type of its own name",
                e.method
            )));
        }
        out.push((name, e, is_request));
    }
    Ok(out)
}

/// `bindings/src/generated/methods.ts` and `bindings/src/generated/client.ts`.
pub(super) fn client_files(protocol: &Protocol) -> Result<Vec<GeneratedFile>, GenerateError> {
    let members = members(protocol)?;
    Ok(vec![
        GeneratedFile::new(
            format!("{BINDINGS_GENERATED_DIR}/methods.ts"),
            methods_ts(protocol),
        ),
        GeneratedFile::new(
            format!("{BINDINGS_GENERATED_DIR}/client.ts"),
            client_ts(&members),
        ),
    ])
}

fn string_list(out: &mut String, name: &str, doc: &str, items: &[&str], element: &str) {
    ts_doc(out, "", doc);
    let _ = writeln!(out, "export const {name} = [");
    for item in items {
        let _ = writeln!(out, "  {item:?},");
    }
    let _ = write!(out, "] as const satisfies readonly {element}[];\n\n");
}

fn methods_ts(protocol: &Protocol) -> String {
    let mut out = generated_ts_note();
    out.push_str("//\n// The method table as values, for code that needs it at run time.\n\n");
    out.push_str(
        "import type { ClientRequestMethod, ErrorKind, ErrorKindCodes, ServerNotificationMethod } from \"./index.js\";\n\n",
    );
    ts_doc(
        &mut out,
        "",
        "The protocol version these bindings describe (semver); the daemon sends its own as\n`protocolVersion` in the answer to `initialize`. Same major version: compatible.",
    );
    let _ = writeln!(
        out,
        "export const PROTOCOL_VERSION = {:?};\n",
        crate::PROTOCOL_VERSION
    );
    let requests: Vec<&str> = protocol.requests.iter().map(|e| e.method).collect();
    let notifications: Vec<&str> = protocol.notifications.iter().map(|e| e.method).collect();
    string_list(
        &mut out,
        "REQUEST_METHODS",
        "Every request method the daemon answers, in table order.",
        &requests,
        "ClientRequestMethod",
    );
    string_list(
        &mut out,
        "NOTIFICATION_METHODS",
        "Every notification the daemon sends, in table order.",
        &notifications,
        "ServerNotificationMethod",
    );
    ts_doc(
        &mut out,
        "",
        "The JSON-RPC error code of each application error kind (`error.data.kind`).",
    );
    out.push_str("export const ERROR_KIND_CODES: ErrorKindCodes = {\n");
    for kind in ErrorKind::ALL {
        let _ = writeln!(out, "  {:?}: {},", kind.as_str(), kind.code());
    }
    out.push_str("};\n\n");
    ts_doc(
        &mut out,
        "",
        "Every application error kind, in table order.",
    );
    out.push_str("export const ERROR_KINDS: readonly ErrorKind[] = [\n");
    for kind in ErrorKind::ALL {
        let _ = writeln!(out, "  {:?},", kind.as_str());
    }
    out.push_str("];\n");
    out
}

fn client_ts(members: &[(String, &Entry, bool)]) -> String {
    let mut out = generated_ts_note();
    out.push_str(
        "//\n// The typed client: one method per request and one subscription per notification of the\n\
         // method table. The transport and `ClientBase` are hand-written (../client-base.ts).\n\n",
    );
    let mut types: Vec<&str> = members
        .iter()
        .flat_map(|(_, e, _)| {
            [
                Some(e.params.ts.as_str()),
                e.result.as_ref().map(|r| r.ts.as_str()),
            ]
        })
        .flatten()
        .collect();
    types.sort();
    types.dedup();
    out.push_str("import { ClientBase } from \"../client-base.js\";\n");
    out.push_str("import type { Disposable, RequestOptions } from \"../client-base.js\";\n");
    for name in &types {
        let _ = writeln!(out, "import type {{ {name} }} from \"./{name}.js\";");
    }
    out.push('\n');
    ts_doc(
        &mut out,
        "",
        "A connection to mcp-app-server with a typed method for every request and a typed\n\
         subscription for every notification. Create one with `spawnAppServer`,\n\
         `connectStreams` or `fromMessageConnection`.\n\n\
         Requests reject with `McpAppServerError` (the daemon's error reply: `code`, `message`,\n\
         `data.kind`) or `ClientError` (timeout, abort, connection closed or disposed).",
    );
    out.push_str("export class McpAppServerClient extends ClientBase {\n");
    let mut first = true;
    for (name, e, is_request) in members {
        if !first {
            out.push('\n');
        }
        first = false;
        if *is_request {
            let result = e.result.as_ref().map_or("never", |r| r.ts.as_str());
            let doc = format!("{}\n\nSends `{}`.", e.doc, e.method);
            ts_doc(&mut out, "  ", &doc);
            let params = if has_required_fields(&e.params_schema) {
                format!("params: {}", e.params.ts)
            } else {
                format!("params: {} = {{}}", e.params.ts)
            };
            let _ = writeln!(
                out,
                "  {name}({params}, options?: RequestOptions): Promise<{result}> {{\n    return this.request({method:?}, params, options);\n  }}",
                method = e.method,
            );
        } else {
            let doc = format!(
                "{}\n\nCalls `listener` with the params of every `{}`; dispose the result to stop.",
                e.doc, e.method
            );
            ts_doc(&mut out, "  ", &doc);
            let _ = writeln!(
                out,
                "  {name}(listener: (params: {params}) => void): Disposable {{\n    return this.on({method:?}, listener);\n  }}",
                params = e.params.ts,
                method = e.method,
            );
        }
    }
    out.push_str("}\n");
    out
}

#[cfg(test)]
mod tests {
    use super::super::TypeNames;
    use super::*;
    use serde_json::json;

    fn entry(method: &'static str, params: &str, result: Option<&str>) -> Entry {
        let names = |ts: &str| TypeNames {
            schema: ts.to_string(),
            ts: ts.to_string(),
        };
        Entry {
            method,
            doc: format!("Does {method}."),
            params: names(params),
            result: result.map(names),
            params_schema: json!({"type": "object", "required": ["name"]}),
            result_schema: result.map(|_| json!({"type": "object"})),
        }
    }

    fn protocol(requests: Vec<Entry>, notifications: Vec<Entry>) -> Protocol {
        Protocol {
            requests,
            notifications,
            definitions: Default::default(),
            ts_files: Default::default(),
            ts_types: Vec::new(),
        }
    }

    fn file<'a>(files: &'a [GeneratedFile], name: &str) -> &'a str {
        let path = format!("{BINDINGS_GENERATED_DIR}/{name}");
        &files
            .iter()
            .find(|f| f.path.to_str() == Some(path.as_str()))
            .unwrap()
            .contents
    }

    #[test]
    fn a_method_added_to_the_table_appears_in_the_client() {
        let p = protocol(
            vec![
                entry(
                    "mcpServer/oauth/login",
                    "OauthLoginParams",
                    Some("OauthLoginResponse"),
                ),
                entry(
                    "mcpServer/oauth/challenge",
                    "OauthChallengeParams",
                    Some("OauthChallengeResponse"),
                ),
            ],
            vec![entry(
                "mcpServer/oauthLogin/completed",
                "OauthLoginCompletedNotification",
                None,
            )],
        );
        let files = client_files(&p).unwrap();
        let client = file(&files, "client.ts");
        assert!(client.contains(
            "  challenge(params: OauthChallengeParams, options?: RequestOptions): Promise<OauthChallengeResponse> {\n    return this.request(\"mcpServer/oauth/challenge\", params, options);"
        ), "{client}");
        assert!(
            client.contains(
                "import type { OauthChallengeParams } from \"./OauthChallengeParams.js\";"
            )
        );
        assert!(client.contains(
            "   * Does mcpServer/oauth/challenge.\n   *\n   * Sends `mcpServer/oauth/challenge`."
        ));
        assert!(client.contains("  onLoginCompleted(listener: (params: OauthLoginCompletedNotification) => void): Disposable {"));
        let methods = file(&files, "methods.ts");
        assert!(
            methods.contains("  \"mcpServer/oauth/challenge\",\n"),
            "{methods}"
        );
    }

    #[test]
    fn clashing_member_names_are_refused() {
        let twice = protocol(
            vec![
                entry("a/login", "OauthLoginParams", Some("R")),
                entry("b/login", "LoginParams", Some("R")),
            ],
            vec![],
        );
        let err = client_files(&twice).unwrap_err().to_string();
        assert!(
            err.contains("`a/login` and `b/login`") && err.contains("`login`"),
            "{err}"
        );

        let base = protocol(vec![], vec![entry("x/closed", "CloseNotification", None)]);
        let err = client_files(&base).unwrap_err().to_string();
        assert!(
            err.contains("`onClose`") && err.contains("ClientBase"),
            "{err}"
        );
    }

    #[test]
    fn member_names_follow_the_payload_types() {
        assert_eq!(stem("OauthLoginParams", "Params", "x"), "Login");
        assert_eq!(
            stem("ListMcpServerStatusParams", "Params", "x"),
            "ListMcpServerStatus"
        );
        assert_eq!(stem("InitializeParams", "Params", "x"), "Initialize");
        assert_eq!(
            stem("OauthLoginCompletedNotification", "Notification", "x"),
            "LoginCompleted"
        );
        assert_eq!(
            stem("AuthStatusChangedNotification", "Notification", "x"),
            "AuthStatusChanged"
        );
        // `Oauthish` is not the `Oauth` prefix.
        assert_eq!(stem("OauthishParams", "Params", "x"), "Oauthish");
        // Without the suffix convention, the wire name decides.
        assert_eq!(
            stem("ChallengeInput", "Params", "mcpServer/oauth/challenge"),
            "McpServerOauthChallenge"
        );
        assert_eq!(lower_first("Login"), "login");
    }
}
