//! The checked-in schema/, bindings/ and docs/protocol.md must be exactly what the code
//! generates, and the generated files must keep the promises frontends rely on.

use std::collections::BTreeMap;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use mcp_app_server_protocol::export::{
    BINDINGS_GENERATED_DIR, DOCS_FILE, GENERATED_DIRS, GeneratedFile, REGENERATE_COMMAND,
    RELEASED_SCHEMA_DIR, RETIRED_GENERATED, SCHEMA_BUNDLE_FILE, generate_all, method_file_stem,
};
use mcp_app_server_protocol::{ClientRequest, ErrorKind, PROTOCOL_VERSION, ServerNotification};
use serde_json::Value;

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn generated() -> BTreeMap<PathBuf, String> {
    generate_all()
        .expect("generation succeeds")
        .into_iter()
        .map(|GeneratedFile { path, contents }| (path, contents))
        .collect()
}

fn list_files(root: &Path, rel: &Path, out: &mut Vec<PathBuf>) -> io::Result<()> {
    let dir = root.join(rel);
    if !dir.exists() {
        return Ok(());
    }
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name();
        let child = rel.join(&name);
        if entry.file_type()?.is_dir() {
            if name != "node_modules" && child != Path::new(RELEASED_SCHEMA_DIR) {
                list_files(root, &child, out)?;
            }
        } else {
            out.push(child);
        }
    }
    Ok(())
}

#[test]
fn checked_in_files_match_the_generator() {
    let root = repo_root();
    let files = generated();
    let mut problems = Vec::new();

    for (path, contents) in &files {
        match fs::read_to_string(root.join(path)) {
            Ok(on_disk) if on_disk == *contents => {}
            Ok(_) => problems.push(format!("differs: {}", path.display())),
            Err(_) => problems.push(format!("missing: {}", path.display())),
        }
    }
    for dir in GENERATED_DIRS {
        let mut on_disk = Vec::new();
        list_files(&root, Path::new(dir), &mut on_disk).expect("list generated folder");
        for path in on_disk.into_iter().filter(|p| !files.contains_key(p)) {
            problems.push(format!("stale: {}", path.display()));
        }
    }
    // Files an earlier layout generated (the types once sat directly in bindings/).
    for (dir, ext) in RETIRED_GENERATED {
        for entry in fs::read_dir(root.join(dir)).into_iter().flatten().flatten() {
            let path = Path::new(dir).join(entry.file_name());
            if entry.file_type().is_ok_and(|t| t.is_file())
                && path.extension().is_some_and(|e| e == *ext)
            {
                problems.push(format!("stale (old layout): {}", path.display()));
            }
        }
    }

    assert!(
        problems.is_empty(),
        "generated protocol files are out of date:\n  {}\nRun `{REGENERATE_COMMAND}` and commit the result.",
        problems.join("\n  ")
    );
}

#[test]
fn generation_is_deterministic() {
    assert_eq!(generated(), generated());
    for (path, contents) in generated() {
        assert!(
            contents.ends_with('\n'),
            "{} lacks a trailing newline",
            path.display()
        );
    }
}

fn json(files: &BTreeMap<PathBuf, String>, path: &str) -> Value {
    let text = files
        .get(Path::new(path))
        .unwrap_or_else(|| panic!("{path} is generated"));
    serde_json::from_str(text).unwrap_or_else(|e| panic!("{path} is JSON: {e}"))
}

#[test]
fn every_method_and_notification_has_standalone_draft07_schemas() {
    let files = generated();
    let draft07 = "http://json-schema.org/draft-07/schema#";
    let mut expected = Vec::new();
    for method in ClientRequest::METHODS {
        let stem = method_file_stem(method);
        expected.push(format!("schema/requests/{stem}.params.json"));
        expected.push(format!("schema/requests/{stem}.result.json"));
    }
    for method in ServerNotification::METHODS {
        expected.push(format!(
            "schema/notifications/{}.json",
            method_file_stem(method)
        ));
    }
    assert!(expected.contains(&"schema/requests/mcpServer.oauth.login.params.json".to_string()));

    for path in &expected {
        let schema = json(&files, path);
        assert_eq!(schema["$schema"], draft07, "{path}");
        // Standalone: every reference resolves inside the file itself.
        let text = files[Path::new(path)].as_str();
        for reference in text.split("\"$ref\": \"").skip(1) {
            let target = &reference[..reference.find('"').unwrap()];
            let name = target
                .strip_prefix("#/definitions/")
                .expect("local reference");
            assert!(
                schema["definitions"].get(name).is_some(),
                "{path}: {target} unresolved"
            );
        }
    }
    // Nothing else in requests/ and notifications/.
    let schema_files = files
        .keys()
        .filter(|p| p.starts_with("schema/requests") || p.starts_with("schema/notifications"))
        .count();
    assert_eq!(schema_files, expected.len());
}

#[test]
fn bundle_defines_every_params_result_and_error_type() {
    let files = generated();
    let bundle = json(&files, SCHEMA_BUNDLE_FILE);
    assert_eq!(bundle["$schema"], "http://json-schema.org/draft-07/schema#");
    let definitions = bundle["definitions"]
        .as_object()
        .expect("definitions object");

    let names = [
        "InitializeParams",
        "InitializeResponse",
        "ListMcpServerStatusParams",
        "ListMcpServerStatusResponse",
        "ReloadConfigParams",
        "ReloadConfigResponse",
        "OauthLoginParams",
        "OauthLoginResponse",
        "OauthCancelParams",
        "OauthCancelResponse",
        "OauthCompleteParams",
        "OauthCompleteResponse",
        "OauthLogoutParams",
        "OauthLogoutResponse",
        "OauthTokenParams",
        "OauthTokenResponse",
        "OauthLoginCompletedNotification",
        "OauthLoginRestartedNotification",
        "AuthStatusChangedNotification",
        "McpServerStatus",
        "ClientInfo",
        "ErrorKind",
        "RequestId",
        "JsonRpcErrorResponse",
    ];
    for name in names {
        assert!(definitions.contains_key(name), "bundle lacks {name}");
    }
    // The typed envelopes cover the whole table, so a new method cannot be left out.
    let methods = |def: &str| -> Vec<String> {
        definitions[def]["oneOf"]
            .as_array()
            .unwrap()
            .iter()
            .map(|alt| {
                alt["properties"]["method"]["const"]
                    .as_str()
                    .unwrap()
                    .to_string()
            })
            .collect()
    };
    assert_eq!(methods("ClientRequest"), ClientRequest::METHODS);
    assert_eq!(methods("ServerNotification"), ServerNotification::METHODS);
    // Every params/result definition comes from the same table as the per-method files.
    for method in ClientRequest::METHODS {
        let stem = method_file_stem(method);
        for role in ["params", "result"] {
            let file = json(&files, &format!("schema/requests/{stem}.{role}.json"));
            let title = file["title"].as_str().unwrap();
            assert!(
                definitions.contains_key(title),
                "bundle lacks {title} ({method} {role})"
            );
        }
    }
    let kinds: Vec<&str> = definitions["ErrorKind"]["oneOf"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["const"].as_str().unwrap())
        .collect();
    let expected: Vec<&str> = ErrorKind::ALL.iter().map(|k| k.as_str()).collect();
    assert_eq!(kinds, expected);
    // Doc comments become descriptions.
    assert_eq!(
        definitions["OauthLoginParams"]["properties"]["name"]["description"],
        "The configured server name."
    );
}

fn bindings(files: &BTreeMap<PathBuf, String>) -> impl Iterator<Item = (&PathBuf, &String)> {
    files.iter().filter(|(p, _)| p.starts_with("bindings"))
}

/// A generated TypeScript file, by name inside `bindings/src/generated/`.
fn ts<'a>(files: &'a BTreeMap<PathBuf, String>, name: &str) -> &'a String {
    let path = Path::new(BINDINGS_GENERATED_DIR).join(name);
    files
        .get(&path)
        .unwrap_or_else(|| panic!("{} is generated", path.display()))
}

#[test]
fn bindings_never_use_bigint() {
    let files = generated();
    assert!(bindings(&files).count() > 5);
    for (path, contents) in bindings(&files) {
        assert!(
            !contents.contains("bigint"),
            "{} mentions bigint",
            path.display()
        );
    }
    let token = ts(&files, "OauthTokenResponse.ts");
    assert!(token.contains("expiresAt?: number"), "{token}");
    let list = ts(&files, "ListMcpServerStatusParams.ts");
    assert!(list.contains("limit?: number | null"), "{list}");
}

#[test]
fn optional_request_fields_are_optional_and_nullable() {
    let files = generated();
    let login = ts(&files, "OauthLoginParams.ts");
    for field in [
        "scopes?: Array<string> | null",
        "clientMetadataUrlBase?: string | null",
        "clientRegistration?: ClientRegistrationMode | null",
        "timeoutSecs?: number | null",
    ] {
        assert!(login.contains(field), "missing `{field}` in:\n{login}");
    }
    assert!(login.contains("name: string"), "{login}");
    let init = ts(&files, "InitializeParams.ts");
    assert!(
        init.contains("capabilities?: ClientCapabilities | null"),
        "{init}"
    );
    // Results: optional means absent, never null.
    let status = ts(&files, "McpServerStatus.ts");
    assert!(status.contains("url?: string,"), "{status}");
}

#[test]
fn index_maps_every_method_to_its_types() {
    let files = generated();
    let index = ts(&files, "index.ts");
    for method in ClientRequest::METHODS {
        assert!(
            index.contains(&format!("  \"{method}\": {{ params: ")),
            "{method} not in map"
        );
    }
    for method in ServerNotification::METHODS {
        assert!(
            index.contains(&format!("  \"{method}\": {{ params: ")),
            "{method} not in map"
        );
    }
    assert!(index.contains(
        "\"mcpServer/oauth/login\": { params: OauthLoginParams; result: OauthLoginResponse };"
    ));
    // Every per-type file is re-exported.
    for (path, _) in bindings(&files) {
        let name = path.file_stem().unwrap().to_str().unwrap();
        if path.extension().is_some_and(|e| e == "ts")
            && !["index", "client", "methods"].contains(&name)
        {
            assert!(
                index.contains(&format!("export type {{ {name} }} from \"./{name}.js\";")),
                "index.ts does not re-export {name}"
            );
        }
    }
}

/// The client package: its typed methods come from the table, so a method added there is in
/// the client (and a client generated before it fails `checked_in_files_match_the_generator`).
#[test]
fn client_has_a_method_per_request_and_a_subscription_per_notification() {
    let files = generated();
    let client = ts(&files, "client.ts");
    for method in ClientRequest::METHODS {
        assert!(
            client.contains(&format!(
                "    return this.request(\"{method}\", params, options);"
            )),
            "client.ts has no method for {method}"
        );
    }
    for method in ServerNotification::METHODS {
        assert!(
            client.contains(&format!("    return this.on(\"{method}\", listener);")),
            "client.ts has no subscription for {method}"
        );
    }
    for signature in [
        "  login(params: OauthLoginParams, options?: RequestOptions): Promise<OauthLoginResponse> {",
        "  listMcpServerStatus(params: ListMcpServerStatusParams = {}, options?: RequestOptions): Promise<ListMcpServerStatusResponse> {",
        "  onLoginCompleted(listener: (params: OauthLoginCompletedNotification) => void): Disposable {",
        "  onLoginRestarted(listener: (params: OauthLoginRestartedNotification) => void): Disposable {",
        "  onAuthStatusChanged(listener: (params: AuthStatusChangedNotification) => void): Disposable {",
    ] {
        assert!(client.contains(signature), "client.ts lacks `{signature}`");
    }
    let methods = ts(&files, "methods.ts");
    for method in ClientRequest::METHODS
        .iter()
        .chain(ServerNotification::METHODS)
    {
        assert!(
            methods.contains(&format!("  \"{method}\",\n")),
            "methods.ts lacks {method}"
        );
    }
    for kind in ErrorKind::ALL {
        assert!(
            methods.contains(&format!("  \"{}\": {},\n", kind.as_str(), kind.code())),
            "methods.ts lacks the code of {kind}"
        );
    }
}

/// bindings/package.json is written by hand (npm owns its lock file); it must describe the
/// package the frontends install: the protocol's version (not the daemon's: the crate
/// versions move with the daemon, the package with the protocol), compiled output, no
/// runtime dependencies.
#[test]
fn bindings_package_is_versioned_with_the_protocol_and_has_no_runtime_dependencies() {
    let text = fs::read_to_string(repo_root().join("bindings/package.json")).unwrap();
    let package: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(package["name"], "@mcp-app-server/protocol");
    assert_eq!(
        package["version"], PROTOCOL_VERSION,
        "bindings/package.json carries the protocol's version (PROTOCOL_VERSION)"
    );
    assert_eq!(package["type"], "module");
    assert_eq!(package["types"], "./dist/index.d.ts");
    assert_eq!(
        package["exports"]["."]["import"]["default"],
        "./dist/index.js"
    );
    assert_eq!(
        package["exports"]["."]["require"]["default"],
        "./dist/cjs/index.js"
    );
    assert!(
        package.get("dependencies").is_none(),
        "runtime dependencies: {}",
        package["dependencies"]
    );
    assert_eq!(
        package["peerDependenciesMeta"]["vscode-jsonrpc"]["optional"],
        true
    );
    assert_eq!(package["scripts"]["prepack"], "npm run build");
    assert!(package["devDependencies"]["typescript"].is_string());
}

#[test]
fn docs_cover_methods_notifications_errors_and_the_handshake() {
    let files = generated();
    let docs = &files[Path::new(DOCS_FILE)];
    for method in ClientRequest::METHODS
        .iter()
        .chain(ServerNotification::METHODS)
    {
        assert!(
            docs.contains(&format!("### `{method}`")),
            "docs lack {method}"
        );
    }
    for kind in ErrorKind::ALL {
        let row = format!("| `{}` | {} | ", kind.as_str(), kind.code());
        assert!(docs.contains(&row), "docs lack {row}");
    }
    for code in ["-32700", "-32600", "-32601", "-32602", "-32603"] {
        assert!(docs.contains(&format!("| {code} |")), "docs lack {code}");
    }
    for needle in [
        "Content-Length",
        "Newline-delimited JSON",
        "optOutNotificationMethods",
        "alreadyInitialized",
        REGENERATE_COMMAND,
        "| `timeoutSecs` | integer (uint32) \\| null | no |",
    ] {
        assert!(docs.contains(needle), "docs lack {needle}");
    }
}

/// The protocol's version is one: the daemon's `PROTOCOL_VERSION` (sent in `initialize`), the
/// npm package's, the generated bindings' `PROTOCOL_VERSION`, and a `## <version>` section of
/// CHANGELOG.md.
#[test]
fn the_protocol_version_is_the_same_everywhere() {
    let root = repo_root();
    let package: Value = serde_json::from_str(
        &fs::read_to_string(root.join("bindings/package.json")).expect("bindings/package.json"),
    )
    .expect("package.json is JSON");
    assert_eq!(
        package["version"], PROTOCOL_VERSION,
        "bindings/package.json and PROTOCOL_VERSION (protocol/src/lib.rs) must carry the same version"
    );
    let parts: Vec<&str> = PROTOCOL_VERSION.split('.').collect();
    assert!(
        parts.len() == 3 && parts.iter().all(|p| p.parse::<u32>().is_ok()),
        "PROTOCOL_VERSION is not MAJOR.MINOR.PATCH: {PROTOCOL_VERSION}"
    );
    let changelog = fs::read_to_string(root.join("CHANGELOG.md")).expect("CHANGELOG.md");
    assert!(
        changelog
            .lines()
            .any(|l| l.starts_with(&format!("## {PROTOCOL_VERSION}"))),
        "CHANGELOG.md has no `## {PROTOCOL_VERSION}` section"
    );
    let init = generated()
        .remove(Path::new("bindings/src/generated/methods.ts"))
        .expect("methods.ts");
    assert!(
        init.contains(&format!(
            "export const PROTOCOL_VERSION = \"{PROTOCOL_VERSION}\";"
        )),
        "{init}"
    );
}
