//! What `connect --conformance` does beyond a plain connect: the preregistered client the
//! MCP conformance suite passes in MCP_CONFORMANCE_CONTEXT, a call of a listed tool with
//! arguments made from its input schema, and a read of the first resource and prompt, so
//! every request kind that carries `Mcp-Name` is exercised.

use serde_json::{Map, Value, json};

use url::Url;

use super::Session;
use crate::cli::engine::CliError;
use crate::cli::output::say;
use crate::config::enterprise::{EnterpriseIdpConfig, OPENID_SCOPE};
use crate::oauth::ServerTarget;
use crate::oauth::enterprise::EnterpriseTarget;

/// The tool the auth scenarios expect a call of.
const CONFORMANCE_TOOL: &str = "test-tool";

/// An identity provider sign-in the suite hands over (enterprise-managed authorization).
pub(super) struct IdpSeed {
    pub idp: EnterpriseIdpConfig,
    pub token_endpoint: Url,
    pub id_token: String,
}

/// The suite passes a preregistered client as JSON in MCP_CONFORMANCE_CONTEXT. For the
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
