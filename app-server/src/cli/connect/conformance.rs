//! What `connect --conformance` does beyond a plain connect: the preregistered client or
//! grant credential the MCP conformance suite passes in MCP_CONFORMANCE_CONTEXT, a call of a listed tool with
//! arguments made from its input schema, and a read of the first resource and prompt, so
//! every request kind that carries `Mcp-Name` is exercised.

use serde_json::{Map, Value, json};

use url::Url;

use super::Session;
use crate::cli::engine::CliError;
use crate::cli::output::say;
use crate::config::enterprise::{EnterpriseIdpConfig, OPENID_SCOPE};
use crate::config::grant::{
    AssertionSource, ClientAuthConfig, GrantConfig, InlineSecret, KeySource,
};
use crate::engine::EnterpriseTarget;
use crate::engine::ServerTarget;
use crate::oauth::jose::JwsAlg;

/// The tool the auth scenarios expect a call of.
const CONFORMANCE_TOOL: &str = "test-tool";

/// An identity provider sign-in the suite hands over (enterprise-managed authorization).
pub(super) struct IdpSeed {
    pub idp: EnterpriseIdpConfig,
    pub token_endpoint: Url,
    pub id_token: String,
}

/// The suite passes the scenario (`name`) and its client as JSON in
/// MCP_CONFORMANCE_CONTEXT: a preregistered client, or the credential of a grant that
/// needs no browser (client credentials with a secret or a PEM key, a workload identity
/// token), which then stands in for the `[mcp_servers.NAME.oauth]` settings. For the
/// enterprise-managed authorization scenario it adds the identity provider (`idp_issuer`,
/// `idp_client_id`, `idp_token_endpoint`) and the user's ID token there (`idp_id_token`):
/// the server is then an enterprise server, and the ID token is stored as the identity
/// provider session, as a finished sign-in would store it.
pub(super) fn apply_context(target: &mut ServerTarget) -> Result<Option<IdpSeed>, CliError> {
    let Ok(text) = std::env::var("MCP_CONFORMANCE_CONTEXT") else {
        return Ok(None);
    };
    let context: Value = serde_json::from_str(&text)
        .map_err(|e| CliError::Usage(format!("MCP_CONFORMANCE_CONTEXT is not JSON: {e}")))?;
    if let Some(grant) = grant_of(&context)? {
        target.client_id = None;
        target.client_secret = None;
        target.grant = grant;
        return Ok(None);
    }
    if let Some(id) = context["client_id"].as_str() {
        target.client_id = Some(id.to_string());
        target.client_secret = context["client_secret"].as_str().map(str::to_string);
    }
    let (Some(issuer), Some(idp_client), Some(endpoint), Some(id_token)) = (
        context["idp_issuer"].as_str(),
        context["idp_client_id"].as_str(),
        context["idp_token_endpoint"].as_str(),
        context["idp_id_token"].as_str(),
    ) else {
        return Ok(None);
    };
    let token_endpoint = Url::parse(endpoint).map_err(|e| {
        CliError::Usage(format!(
            "MCP_CONFORMANCE_CONTEXT idp_token_endpoint is not a URL: {e}"
        ))
    })?;
    let idp = EnterpriseIdpConfig {
        issuer: issuer.to_string(),
        client_id: idp_client.to_string(),
        auth: None,
        scopes: vec![OPENID_SCOPE.to_string()],
    };
    target.enterprise = Some(EnterpriseTarget {
        idp: idp.clone(),
        client_id: target.client_id.clone().unwrap_or_default(),
        auth: None,
    });
    Ok(Some(IdpSeed {
        idp,
        token_endpoint,
        id_token: id_token.to_string(),
    }))
}

/// The grant a scenario's context describes, if it describes one.
fn grant_of(context: &Value) -> Result<Option<GrantConfig>, CliError> {
    let text = |key: &str| context[key].as_str().map(str::to_string);
    let missing = |key: &str| {
        CliError::Usage(format!(
            "MCP_CONFORMANCE_CONTEXT of {} has no `{key}`",
            context["name"]
        ))
    };
    let grant = match context["name"].as_str() {
        Some("auth/client-credentials-jwt") => {
            let alg_name = text("signing_algorithm").unwrap_or_else(|| "ES256".into());
            let alg = JwsAlg::from_name(&alg_name).ok_or_else(|| {
                CliError::Usage(format!("unsupported signing_algorithm {alg_name}"))
            })?;
            GrantConfig::ClientCredentials {
                client_id: text("client_id").ok_or_else(|| missing("client_id"))?,
                auth: ClientAuthConfig::PrivateKey {
                    source: KeySource::Pem(InlineSecret(
                        text("private_key_pem").ok_or_else(|| missing("private_key_pem"))?,
                    )),
                    alg,
                    kid: None,
                },
            }
        }
        Some("auth/client-credentials-basic") => GrantConfig::ClientCredentials {
            client_id: text("client_id").ok_or_else(|| missing("client_id"))?,
            auth: ClientAuthConfig::Secret(InlineSecret(
                text("client_secret").ok_or_else(|| missing("client_secret"))?,
            )),
        },
        Some("auth/wif-jwt-bearer") => GrantConfig::JwtBearer {
            client_id: text("client_id"),
            assertion: AssertionSource::Value(InlineSecret(
                text("valid_jwt").ok_or_else(|| missing("valid_jwt"))?,
            )),
        },
        _ => return Ok(None),
    };
    Ok(Some(grant))
}

/// `test-tool` when listed, else the first tool, with its arguments.
pub(super) fn pick_tool(tools: &[Value]) -> Option<(String, Value)> {
    let tool = tools
        .iter()
        .find(|t| t["name"] == CONFORMANCE_TOOL)
        .or_else(|| tools.first())?;
    let name = tool["name"].as_str()?.to_string();
    Some((name, arguments_for(&tool["inputSchema"])))
}

/// A value for each required property of an object schema, by its type.
fn arguments_for(schema: &Value) -> Value {
    let mut arguments = Map::new();
    let required = schema["required"].as_array().cloned().unwrap_or_default();
    for name in required.iter().filter_map(Value::as_str) {
        let value = match schema["properties"][name]["type"].as_str() {
            Some("number" | "integer") => json!(1),
            Some("boolean") => json!(true),
            Some("array") => json!([]),
            Some("object") => json!({}),
            _ => json!("conformance"),
        };
        arguments.insert(name.to_string(), value);
    }
    Value::Object(arguments)
}

/// Reads the first resource and gets the first prompt, when the server has them.
pub(super) async fn exercise(
    session: &mut Session<'_>,
    capabilities: &Value,
) -> Result<(), CliError> {
    if capabilities.get("resources").is_some() {
        let list = session.request("resources/list", json!({})).await?;
        if let Some(uri) = list["resources"][0]["uri"].as_str() {
            session
                .request("resources/read", json!({"uri": uri}))
                .await?;
            say(format!("Read resource {uri}"));
        }
    }
    if capabilities.get("prompts").is_some() {
        let list = session.request("prompts/list", json!({})).await?;
        if let Some(prompt) = list["prompts"][0]["name"].as_str() {
            session
                .request("prompts/get", json!({"name": prompt, "arguments": {}}))
                .await?;
            say(format!("Got prompt {prompt}"));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grant_scenarios_configure_their_grant() {
        let basic = json!({"name": "auth/client-credentials-basic",
            "client_id": "c", "client_secret": "s"});
        assert!(matches!(
            grant_of(&basic).unwrap(),
            Some(GrantConfig::ClientCredentials { client_id, auth: ClientAuthConfig::Secret(s) })
                if client_id == "c" && s.0 == "s"
        ));
        let wif = json!({"name": "auth/wif-jwt-bearer", "client_id": "w",
            "valid_jwt": "a.b.c", "expired_jwt": "x.y.z"});
        assert!(matches!(
            grant_of(&wif).unwrap(),
            Some(GrantConfig::JwtBearer { assertion: AssertionSource::Value(t), .. }) if t.0 == "a.b.c"
        ));
        let jwt = json!({"name": "auth/client-credentials-jwt", "client_id": "c",
            "signing_algorithm": "ES256"});
        assert!(grant_of(&jwt).is_err(), "a missing key is an error");
        let other = json!({"name": "auth/basic-cimd", "client_id": "c"});
        assert!(grant_of(&other).unwrap().is_none());
    }

    #[test]
    fn tool_choice_and_arguments_from_the_schema() {
        let tools = vec![
            json!({"name": "add_numbers", "inputSchema": {"type": "object",
                "properties": {"a": {"type": "number"}, "b": {"type": "integer"},
                               "c": {"type": "string"}},
                "required": ["a", "b"]}}),
            json!({"name": "test-tool", "inputSchema": {"type": "object"}}),
        ];
        assert_eq!(pick_tool(&tools), Some(("test-tool".into(), json!({}))));
        assert_eq!(
            pick_tool(&tools[..1]),
            Some(("add_numbers".into(), json!({"a": 1, "b": 1})))
        );
        assert_eq!(pick_tool(&[]), None);
    }
}
