//! `mcp-app-server callback-url NAME`: the exact redirect URI a login to that server uses,
//! for authorization servers that only accept redirect URIs registered in advance. Only a
//! fixed callback port makes it stable, so one must be configured.

use url::Url;

use super::engine::{CliError, Engine};
use super::output::say;
use crate::oauth::callback::redirect_uri;
use crate::oauth::callback_id::callback_id;

/// `callback-url NAME | --url URL`.
#[derive(Debug, clap::Args)]
pub struct CallbackUrlArgs {
    /// The server's name in config.toml.
    #[arg(required_unless_present = "url")]
    pub name: Option<String>,
    /// A server that is not in config.toml (the global callback settings apply).
    #[arg(long, value_name = "URL", conflicts_with = "name")]
    pub url: Option<Url>,
}

pub async fn run(args: CallbackUrlArgs) -> Result<(), CliError> {
    let engine = Engine::open()?;
    let result = (|| {
        let target = match (&args.url, &args.name) {
            (Some(url), _) => engine.by_url(url, None)?,
            (None, Some(name)) => engine.configured(name)?,
            (None, None) => {
                return Err(CliError::Usage("name a server or pass --url <url>".into()));
            }
        };
        let Some(port) = target.callback_port else {
            return Err(CliError::Failed(format!(
                "no fixed callback port is configured for `{name}`, so its redirect URI changes with every login. \
                 Set one in {config}: `mcp_oauth_callback_port = 8765` at the top (all servers), or \
                 `callback_port = 8765` under [mcp_servers.{name}.oauth] (this server only); \
                 then run this command again and register the URI it prints",
                name = target.name,
                config = engine.home.config_file().display(),
            )));
        };
        Ok(redirect_uri(
            target.callback_url.as_ref(),
            port,
            &callback_id(&target.url),
        ))
    })();
    engine.close().await;
    say(result?);
    Ok(())
}
