//! `mcp-app-server secret set NAME` and `secret delete NAME`: the client secret that
//! `client_secret_keyring` in a server's oauth table names, in the OS keyring (rule 71).
//! `set` reads the secret from stdin: a prompt that does not echo on a terminal, else the
//! whole input (one trailing newline dropped), so that `secret set NAME < file` works.

use std::io::Read;

use super::engine::CliError;
use super::output::{say, warn};
use crate::config::{self, Config};
use crate::credentials::{ClientSecretKeyring, MAX_SECRET_BYTES};
use crate::home::Home;

/// `secret set|delete NAME`.
#[derive(Debug, clap::Subcommand)]
pub enum SecretCommand {
    /// Store the client secret of server NAME, read from stdin (hidden on a terminal),
    /// under the label its `client_secret_keyring` names.
    Set {
        /// The server's name in config.toml.
        name: String,
    },
    /// Remove the client secret of server NAME from the OS keyring.
    Delete {
        /// The server's name in config.toml.
        name: String,
    },
}

pub async fn run(command: SecretCommand) -> Result<(), CliError> {
    let home = Home::from_env()?;
    let config = config::load(&home.config_file())?;
    let keyring = ClientSecretKeyring::os();
    match command {
        SecretCommand::Set { name } => {
            let label = label_of(&config, &name, &home)?;
            let secret = blocking(move || read_secret(&name).map(|s| (s, name))).await?;
            let (secret, name) = secret;
            let stored_label = label.clone();
            blocking(move || {
                keyring
                    .set(&stored_label, &secret)
                    .map_err(|e| keyring_failed(&e))
            })
            .await?;
            say(format!(
                "Stored the client secret of `{name}` in the OS keyring (entry `{label}`); the next login uses it."
            ));
        }
        SecretCommand::Delete { name } => {
            let label = label_of(&config, &name, &home)?;
            let removed_label = label.clone();
            let removed = blocking(move || {
                keyring
                    .delete(&removed_label)
                    .map_err(|e| keyring_failed(&e))
            })
            .await?;
            say(if removed {
                format!(
                    "Removed the client secret of `{name}` (entry `{label}`) from the OS keyring."
                )
            } else {
                format!("The OS keyring held no client secret for `{name}` (entry `{label}`).")
            });
        }
    }
    Ok(())
}

/// Runs `op` off the async worker: reading a terminal and the keyring both wait.
async fn blocking<T: Send + 'static>(
    op: impl FnOnce() -> Result<T, CliError> + Send + 'static,
) -> Result<T, CliError> {
    tokio::task::spawn_blocking(op)
        .await
        .map_err(|e| CliError::Failed(format!("the keyring call failed ({e})")))?
}

fn keyring_failed(e: &crate::credentials::KeyringError) -> CliError {
    CliError::Failed(format!(
        "the OS keyring could not be used: {e}; unlock it and try again (a desktop session with a keyring (Secret Service, macOS Keychain, Windows Credential Manager) is needed), or keep the secret in an environment variable with `client_secret_env_var`"
    ))
}

/// The label `client_secret_keyring` gives for server `name`.
fn label_of(config: &Config, name: &str, home: &Home) -> Result<String, CliError> {
    let server = config
        .servers
        .get(name)
        .ok_or_else(|| CliError::ServerNotFound {
            name: name.to_string(),
            config: home.config_file(),
        })?;
    let http = server
        .http()
        .ok_or_else(|| CliError::NotHttp(name.to_string()))?;
    http.oauth.client_secret_keyring.clone().ok_or_else(|| {
        CliError::Usage(format!(
            "`mcp_servers.{name}.oauth` names no keyring entry; add `client_id = \"...\"` and `client_secret_keyring = \"{name}\"` to [mcp_servers.{name}.oauth] in {}, then run this again",
            home.config_file().display()
        ))
    })
}

/// The secret from stdin: a hidden prompt on a terminal, else all of the input.
fn read_secret(name: &str) -> Result<String, CliError> {
    use std::io::IsTerminal;
    let stdin = std::io::stdin();
    if stdin.is_terminal() {
        warn(format!(
            "Client secret of `{name}` (not shown as you type):"
        ));
        let _echo_off = EchoOff::on_stdin();
        let mut line = String::new();
        let read = stdin.read_line(&mut line);
        drop(_echo_off);
        warn("");
        read.map_err(|e| CliError::Failed(format!("cannot read the secret: {e}")))?;
        return secret_from(line.as_bytes());
    }
    let mut bytes = Vec::new();
    stdin
        .lock()
        .take(MAX_SECRET_BYTES as u64 + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| CliError::Failed(format!("cannot read the secret from stdin: {e}")))?;
    secret_from(&bytes)
}

/// Checks what was read: one trailing newline (`\n` or `\r\n`) dropped; empty, too long,
/// not UTF-8 or holding control characters is refused (a secret pasted with a stray
/// character would fail only at the authorization server).
fn secret_from(bytes: &[u8]) -> Result<String, CliError> {
    if bytes.len() > MAX_SECRET_BYTES {
        return Err(CliError::Usage(format!(
            "the secret is longer than {MAX_SECRET_BYTES} bytes; give the client secret itself"
        )));
    }
    let text = std::str::from_utf8(bytes)
        .map_err(|_| CliError::Usage("the secret is not UTF-8 text".to_string()))?;
    let text = text
        .strip_suffix('\n')
        .map(|t| t.strip_suffix('\r').unwrap_or(t))
        .unwrap_or(text);
    if text.is_empty() {
        return Err(CliError::Usage(
            "no secret given: type it at the prompt, or pipe it in (`mcp-app-server secret set NAME < file`)".to_string(),
        ));
    }
    if text.chars().any(char::is_control) {
        return Err(CliError::Usage(
            "the secret holds control characters or more than one line; give the client secret alone".to_string(),
        ));
    }
    Ok(text.to_string())
}

/// Terminal echo turned off on stdin while it lives (Linux; elsewhere the input shows).
struct EchoOff {
    #[cfg(target_os = "linux")]
    saved: Option<rustix::termios::Termios>,
}

impl EchoOff {
    fn on_stdin() -> Self {
        #[cfg(target_os = "linux")]
        {
            use rustix::termios::{LocalModes, OptionalActions, tcgetattr, tcsetattr};
            let stdin = std::io::stdin();
            let saved = tcgetattr(&stdin).ok();
            if let Some(saved) = &saved {
                let mut quiet = saved.clone();
                quiet.local_modes.remove(LocalModes::ECHO);
                let _ = tcsetattr(&stdin, OptionalActions::Now, &quiet);
            }
            EchoOff { saved }
        }
        #[cfg(not(target_os = "linux"))]
        {
            EchoOff {}
        }
    }
}

impl Drop for EchoOff {
    fn drop(&mut self) {
        #[cfg(target_os = "linux")]
        if let Some(saved) = &self.saved {
            let _ = rustix::termios::tcsetattr(
                std::io::stdin(),
                rustix::termios::OptionalActions::Now,
                saved,
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_was_read_becomes_the_secret() {
        assert_eq!(secret_from(b"s3cret\n").unwrap(), "s3cret");
        assert_eq!(secret_from(b"s3cret\r\n").unwrap(), "s3cret");
        assert_eq!(secret_from(b"s3cret").unwrap(), "s3cret");
        assert_eq!(secret_from(b" spaced out ").unwrap(), " spaced out ");
        for bad in [&b""[..], b"\n", b"two\nlines\n", b"tab\there", b"\xff\xfe"] {
            assert!(
                matches!(secret_from(bad), Err(CliError::Usage(_))),
                "{bad:?}"
            );
        }
        let long = vec![b'a'; MAX_SECRET_BYTES + 1];
        let e = secret_from(&long).unwrap_err().to_string();
        assert!(e.contains("longer than"), "{e}");
        assert!(secret_from(&long[..MAX_SECRET_BYTES]).is_ok());
    }

    #[test]
    fn the_label_comes_from_the_servers_oauth_table() {
        let home = Home::at("/nonexistent-home");
        let config = config::parse(
            "[mcp_servers.corp]\nurl = \"https://corp.example/mcp\"\n[mcp_servers.corp.oauth]\nclient_id = \"c\"\nclient_secret_keyring = \"corp-prod\"\n\
             [mcp_servers.plain]\nurl = \"https://plain.example/mcp\"\n\
             [mcp_servers.local]\ncommand = \"npx\"\n",
            std::path::Path::new("config.toml"),
        )
        .unwrap();
        assert_eq!(label_of(&config, "corp", &home).unwrap(), "corp-prod");
        let e = label_of(&config, "plain", &home).unwrap_err().to_string();
        assert!(e.contains("client_secret_keyring = \"plain\""), "{e}");
        assert!(matches!(
            label_of(&config, "local", &home),
            Err(CliError::NotHttp(_))
        ));
        assert!(matches!(
            label_of(&config, "nope", &home),
            Err(CliError::ServerNotFound { .. })
        ));
    }
}
