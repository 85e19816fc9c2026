//! `mcp-app-server logout NAME [--revoke]`: deletes a server's stored credentials, after
//! revoking them at the authorization server (RFC 7009) when asked.

use super::engine::{CliError, Engine};
use super::output::{say, warn};
use crate::credentials::check_account;
use crate::engine::ServerTarget;

/// `logout NAME [--revoke]`.
#[derive(Debug, clap::Args)]
pub struct LogoutArgs {
    /// The server's name (in config.toml, or the name shown by `status` for a server logged
    /// in to by URL).
    pub name: String,
    /// Revoke the refresh and access tokens at the authorization server first.
    #[arg(long)]
    pub revoke: bool,
    /// Log out of this account only (the label given to `login --account`); the server's
    /// other accounts stay logged in. Default: the account used last, or, for a server
    /// logged in to by URL, every account.
    #[arg(long, value_name = "LABEL")]
    pub account: Option<String>,
}

pub async fn run(args: LogoutArgs) -> Result<(), CliError> {
    let engine = Engine::open()?;
    let result = logout(&engine, &args).await;
    engine.close().await;
    result
}

async fn logout(engine: &Engine, args: &LogoutArgs) -> Result<(), CliError> {
    let targets = targets(engine, &args.name, args.account.as_deref()).await?;
    let mut revocation_failures = Vec::new();
    let mut removed_any = false;
    for target in targets {
        let out = engine
            .oauth
            .logout(&target, args.revoke)
            .await
            .map_err(|error| CliError::Logout {
                name: target.name.clone(),
                error,
            })?;
        if !out.removed {
            say(format!(
                "`{}` ({}){} had no stored credentials.",
                target.name,
                target.url,
                as_account(&target)
            ));
            continue;
        }
        removed_any = true;
        let revoked = if out.revoked {
            "; the tokens were revoked at the authorization server"
        } else {
            ""
        };
        say(format!(
            "Logged out of `{}` ({}){}: credentials deleted{revoked}.",
            target.name,
            target.url,
            as_account(&target)
        ));
        if let Some(error) = out.revocation_error.filter(|_| args.revoke) {
            revocation_failures.push(format!("`{}`: {error}", target.name));
        }
    }
    if !revocation_failures.is_empty() {
        for f in &revocation_failures {
            warn(format!("Revocation failed for {f}"));
        }
        return Err(CliError::Failed(
            "the local credentials were deleted, but the authorization server did not confirm the revocation; \
             the tokens stay valid there until they expire"
                .into(),
        ));
    }
    if !removed_any && args.revoke {
        say("Nothing to revoke.");
    }
    Ok(())
}

/// The configured server of that name as `account` (default: the one used last), or every
/// stored login by URL under that name (of `account` only, when given).
async fn targets(
    engine: &Engine,
    name: &str,
    account: Option<&str>,
) -> Result<Vec<ServerTarget>, CliError> {
    if engine.config.servers.contains_key(name) {
        let target = engine.configured(name)?;
        return Ok(vec![engine.as_account(target, account).await?]);
    }
    if let Some(label) = account {
        check_account(label).map_err(|e| CliError::Usage(format!("--account: {e}")))?;
    }
    let mut out = Vec::new();
    for creds in engine.unconfigured_credentials().await? {
        if creds.server_name == name
            && account.is_none_or(|a| creds.account.as_deref() == Some(a))
            && let Ok(url) = url::Url::parse(&creds.server_url)
        {
            let mut target = engine.by_url(&url, None)?;
            target.name = creds.server_name.clone();
            target.account = creds.account.clone();
            out.push(target);
        }
    }
    if out.is_empty() {
        return Err(CliError::NothingToLogOut {
            name: name.to_string(),
            config: engine.home.config_file(),
        });
    }
    Ok(out)
}

/// " as <label>" for a target with an account, else nothing.
fn as_account(target: &ServerTarget) -> String {
    target
        .account
        .as_deref()
        .map_or_else(String::new, |a| format!(" as {a}"))
}
