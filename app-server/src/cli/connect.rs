//! `mcp-app-server connect URL`: a minimal MCP client over Streamable HTTP that logs in
//! when the server asks. It opens with the revision the server speaks (see [`open`]:
//! `server/discover` on the 2026-07-28 wire, else `initialize` and
//! `notifications/initialized`), then `tools/list`, and with `--call` a `tools/call`. A 401
//! starts a login; a 403 `insufficient_scope` starts a login for the union of the scopes
//! held and those asked for (step-up, rule 9). At most [`MAX_AUTHORIZATIONS`] logins per
//! run, so a server that never accepts cannot loop.
//!
//! It is also the client the MCP conformance suite drives: `--conformance` reads the
//! scenario's context (a preregistered client), calls a listed tool and reads what the
//! server offers (see [`conformance`]).

use reqwest::StatusCode;
use serde_json::{Value, json};
use url::Url;

use super::engine::{CliError, Engine};
use super::login::{FlowArgs, Paste, follow_login, login};
use super::mcp_client::{AccessToken, Answer, McpClient, McpError};
use super::output::say;
use crate::engine::{
    ChallengeOutcome, DEFAULT_MIN_VALIDITY_SECS, LoginOptions, Refusal, ServerTarget, VendError,
};
use crate::oauth::discovery::Probe;
use crate::oauth::http::header_map;
use crate::oauth::www_authenticate::BearerChallenge;

/// Logins one run may make: the first and two step-ups.
pub const MAX_AUTHORIZATIONS: u32 = 3;

mod conformance;
mod open;

/// `connect URL [--call TOOL [--args JSON]]`.
#[derive(Debug, clap::Args)]
pub struct ConnectArgs {
    /// Call this tool after listing the tools.
    #[arg(long, value_name = "TOOL")]
    pub call: Option<String>,
    /// The tool's arguments, a JSON object.
    #[arg(long, value_name = "JSON", requires = "call")]
    pub args: Option<String>,
    /// Store the credentials under this name (default: the configured server with this URL,
    /// else a name derived from the host).
    #[arg(long)]
    pub name: Option<String>,
    /// Run as the MCP conformance suite's client: read MCP_CONFORMANCE_CONTEXT (client_id,
    /// client_secret of a preregistered client); unless --call says otherwise call
    /// `test-tool` (or the first tool listed, with arguments made from its input schema);
    /// then read the first resource and get the first prompt the server lists.
    #[arg(long)]
    pub conformance: bool,
    #[command(flatten)]
    pub flow: FlowArgs,
    /// The MCP server's Streamable HTTP endpoint (last, so a harness can append it).
    pub url: Url,
}

pub async fn run(args: ConnectArgs) -> Result<(), CliError> {
    let mut engine = Engine::open()?;
    let result = connect(&mut engine, args).await;
    engine.close().await;
    result
}

async fn connect(engine: &mut Engine, args: ConnectArgs) -> Result<(), CliError> {
    let mut target = engine.by_url(&args.url, args.name.as_deref())?;
    args.flow.apply(&mut target);
    let mut call = args.call.clone();
    if args.conformance
        && let Some(seed) = conformance::apply_context(&mut target)?
    {
        engine
            .oauth
            .seed_idp_session(&seed.idp, seed.token_endpoint, seed.id_token)
            .await
            .map_err(|e| CliError::login(&target.name, e))?;
    }
    let arguments = match &args.args {
        None => json!({}),
        Some(text) => match serde_json::from_str::<Value>(text) {
            Ok(v @ Value::Object(_)) => v,
            _ => {
                return Err(CliError::Usage(format!(
                    "--args must be a JSON object, such as '{{\"query\": \"x\"}}'; got {text}"
                )));
            }
        },
    };
    let headers = header_map(
        target
            .http_headers
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str())),
    )
    .map_err(|e| CliError::Failed(format!("invalid http_headers for `{}`: {e}", target.name)))?;
    let (url, network) = (target.url.clone(), target.network.clone());
    let client =
        tokio::task::spawn_blocking(move || McpClient::with_network(url, headers, &network))
            .await
            .map_err(|e| CliError::Failed(e.to_string()))?
            .map_err(|e| CliError::Failed(e.to_string()))?;
    let mut session = Session {
        engine,
        target,
        flow: args.flow,
        client,
        token: None,
        refreshed: false,
        authorizations: 0,
        paste: Paste::stdin(),
    };
    session.token = session.stored_token().await;

    let hello = session.open().await?;
    say(format!(
        "Connected to {} {} (MCP {}{})",
        hello.server_name,
        hello.server_version,
        hello.revision,
        if session.client.session_id().is_some() {
            ", with a session"
        } else {
            ""
        },
    ));

    let tools = session.request("tools/list", json!({})).await?;
    let listed: Vec<Value> = tools["tools"].as_array().cloned().unwrap_or_default();
    let names: Vec<&str> = listed.iter().filter_map(|t| t["name"].as_str()).collect();
    say(format!("Tools ({}): {}", names.len(), names.join(", ")));

    let mut arguments = arguments;
    if args.conformance
        && args.call.is_none()
        && let Some((tool, synthesized)) = conformance::pick_tool(&listed)
    {
        call = Some(tool);
        arguments = synthesized;
    }
    if let Some(tool) = call {
        let result = session
            .request("tools/call", json!({"name": tool, "arguments": arguments}))
            .await?;
        say(format!("Result of `{tool}`:"));
        say(serde_json::to_string_pretty(&result).unwrap_or_default());
        if result["isError"] == json!(true) {
            return Err(CliError::Failed(format!(
                "the tool `{tool}` reported an error"
            )));
        }
    }
    if args.conformance {
        conformance::exercise(&mut session, &hello.capabilities).await?;
    }
    Ok(())
}

/// The token to present, with its key when it is DPoP-bound. A key that cannot be read
/// leaves no token: the server's refusal then starts a new login.
fn access_token(creds: &crate::credentials::StoredCredentials) -> Option<AccessToken> {
    if !creds.is_dpop_bound() {
        return Some(AccessToken {
            token: creds.access_token.clone(),
            dpop_key: None,
        });
    }
    match creds
        .dpop_key
        .as_deref()
        .map(crate::oauth::dpop::decode_key)
    {
        Some(Ok(key)) => Some(AccessToken {
            token: creds.access_token.clone(),
            dpop_key: Some(std::sync::Arc::new(key)),
        }),
        _ => {
            say("The stored DPoP key cannot be read; logging in again.".to_string());
            None
        }
    }
}

struct Session<'a> {
    engine: &'a mut Engine,
    target: ServerTarget,
    flow: FlowArgs,
    client: McpClient,
    token: Option<AccessToken>,
    /// A refused token was refreshed once already this run.
    refreshed: bool,
    authorizations: u32,
    paste: Paste,
}

impl Session<'_> {
    /// A stored token, refreshed when it is about to expire; none when there is no usable
    /// one (the server's 401 then starts a login).
    async fn stored_token(&self) -> Option<AccessToken> {
        match self
            .engine
            .oauth
            .token(&self.target, DEFAULT_MIN_VALIDITY_SECS)
            .await
        {
            Ok(creds) => access_token(&creds),
            Err(e) if matches!(e.as_ref(), VendError::NotLoggedIn(_)) => None,
            Err(e) => {
                say(format!("The stored credentials cannot be used ({e})."));
                None
            }
        }
    }

    async fn request(&mut self, method: &str, params: Value) -> Result<Value, CliError> {
        self.call(method, params)
            .await?
            .map_err(|e| CliError::Failed(e.to_string()))
    }

    /// A request, logging in when the server asks: the outer error is a failed login, the
    /// inner one the server's answer, for the caller to judge (revision negotiation does).
    async fn call(
        &mut self,
        method: &str,
        params: Value,
    ) -> Result<Result<Value, McpError>, CliError> {
        loop {
            let answer = match self
                .client
                .request(method, params.clone(), self.token.as_ref())
                .await
            {
                Ok(answer) => answer,
                Err(e) => return Ok(Err(e)),
            };
            if let Some(result) = self.handle(method, answer).await? {
                return Ok(Ok(result));
            }
        }
    }

    async fn notify(&mut self, method: &str) -> Result<(), CliError> {
        loop {
            let answer = self
                .client
                .notify(method, self.token.as_ref())
                .await
                .map_err(|e| CliError::Failed(e.to_string()))?;
            if self.handle(method, answer).await?.is_some() {
                return Ok(());
            }
        }
    }

    /// `Some(result)`, or `None` after a login: send again.
    async fn handle(&mut self, method: &str, answer: Answer) -> Result<Option<Value>, CliError> {
        match answer {
            Answer::Result(v) => Ok(Some(v)),
            Answer::Unauthorized(challenge) => {
                if self.token.is_some() && !self.refreshed {
                    // The server dropped the token before its expiry (a restart, a revocation):
                    // a refresh may be all it takes. The same decision a frontend's
                    // mcpServer/oauth/challenge gets.
                    self.refreshed = true;
                    let refusal = Refusal::Unauthorized(challenge.clone().unwrap_or_default());
                    match self
                        .engine
                        .oauth
                        .challenge(&self.target, refusal, self.flow.options(None)?)
                        .await
                    {
                        Ok(ChallengeOutcome::Token(creds)) => {
                            say(format!("`{method}`: the token was refused; refreshed it."));
                            self.token = access_token(&creds);
                            return Ok(None);
                        }
                        Ok(ChallengeOutcome::ReauthenticationRequired { reason, .. }) => {
                            say(format!("`{method}`: the token was refused ({reason})."));
                        }
                        Ok(ChallengeOutcome::Login { .. } | ChallengeOutcome::DpopProof(_)) => {}
                        Err(e) => say(format!(
                            "`{method}`: the token was refused and the refresh failed ({e})."
                        )),
                    }
                }
                say(format!(
                    "`{method}` needs authorization{}.",
                    if self.token.is_some() {
                        " (the token was refused)"
                    } else {
                        ""
                    }
                ));
                self.authorize(StatusCode::UNAUTHORIZED, challenge).await?;
                Ok(None)
            }
            Answer::InsufficientScope(challenge) => {
                self.step_up(method, challenge).await?;
                Ok(None)
            }
        }
    }

    /// A 403 `insufficient_scope`: the step-up login a frontend's mcpServer/oauth/challenge
    /// starts (the scopes held plus those asked for, capped per scope set), followed here.
    async fn step_up(&mut self, method: &str, challenge: BearerChallenge) -> Result<(), CliError> {
        self.count_authorization(Some(&challenge))?;
        let asked = challenge.scope.clone();
        let outcome = self
            .engine
            .oauth
            .challenge(
                &self.target,
                Refusal::InsufficientScope(challenge),
                self.flow.options(None)?,
            )
            .await
            .map_err(|error| CliError::Challenge {
                name: self.target.name.clone(),
                error: Box::new(error),
            })?;
        let ChallengeOutcome::Login { started, scopes } = outcome else {
            return Err(CliError::Failed(format!(
                "`{method}`: the server asked for more scopes, but no step-up login started"
            )));
        };
        say(format!(
            "`{method}` needs more scopes ({}); asking for: {}.",
            asked.as_deref().unwrap_or("unspecified"),
            scopes.join(" ")
        ));
        say(format!(
            "Logging in to `{}` ({})",
            self.target.name, self.target.url
        ));
        follow_login(
            self.engine,
            &self.target,
            started,
            &self.flow,
            &mut self.paste,
        )
        .await?;
        self.use_new_token().await
    }

    /// Counts a login of this run; refuses once [`MAX_AUTHORIZATIONS`] were made.
    fn count_authorization(&mut self, challenge: Option<&BearerChallenge>) -> Result<(), CliError> {
        if self.authorizations >= MAX_AUTHORIZATIONS {
            return Err(CliError::Failed(format!(
                "{} still refuses access after {MAX_AUTHORIZATIONS} authorizations{}; giving up. \
                 The account may lack the permission, or the server may ask for scopes its \
                 authorization server does not grant",
                self.target.url,
                challenge
                    .and_then(|c| c.error_description.clone().or_else(|| c.error.clone()))
                    .map(|d| format!(" ({d})"))
                    .unwrap_or_default()
            )));
        }
        self.authorizations += 1;
        Ok(())
    }

    /// A refusal that no refresh answers: a login, with discovery from that answer (a 401,
    /// or a 400/405/406 from a server that hides its challenge).
    async fn authorize(
        &mut self,
        status: StatusCode,
        challenge: Option<BearerChallenge>,
    ) -> Result<(), CliError> {
        self.count_authorization(challenge.as_ref())?;
        // This client sends its own proofs, so the tokens may be bound (rule 49).
        let options = LoginOptions {
            dpop: true,
            ..self.flow.options(None)?
        };
        login(
            self.engine,
            &self.target,
            options,
            &self.flow,
            Some(Probe { status, challenge }),
            &mut self.paste,
        )
        .await?;
        self.use_new_token().await
    }

    /// The token a login just stored.
    async fn use_new_token(&mut self) -> Result<(), CliError> {
        let creds = self
            .engine
            .oauth
            .token(&self.target, 0)
            .await
            .map_err(|e| CliError::token(&self.target.name, e))?;
        self.token = access_token(&creds);
        Ok(())
    }
}
