//! Opening the authorization URL: the person's browser (`$BROWSER`, else the platform's
//! opener), or, for tests and the conformance suite, an HTTP GET that plays a browser whose
//! authorization server approves at once.

use crate::config::network::ServerNetwork;
use crate::oauth::http::with_server_network;
use std::time::Duration;

use reqwest::header::LOCATION;
use url::Url;

/// How the authorization URL is opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum BrowserMode {
    /// `$BROWSER`, else the platform's opener (`open`, `xdg-open`, `rundll32`).
    System,
    /// GET the authorization URL without following redirects, then GET its `Location` (the
    /// loopback callback): for authorization servers that approve without a person.
    HttpGet,
    /// Print the URL only.
    None,
}

/// Why the browser could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum BrowserError {
    #[error(
        "no browser found: $BROWSER is not set{}",
        if *.no_display { " and there is no graphical display (DISPLAY/WAYLAND_DISPLAY)" } else { " and no opener worked" }
    )]
    NotFound { no_display: bool },
    #[error("{0}")]
    HttpGet(String),
}

/// The platform, as far as opening a URL is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Platform {
    Windows,
    MacOs,
    /// Linux and the BSDs: an X11 or Wayland desktop opener.
    Unix,
}

impl Platform {
    pub fn current() -> Self {
        if cfg!(windows) {
            Platform::Windows
        } else if cfg!(target_os = "macos") {
            Platform::MacOs
        } else {
            Platform::Unix
        }
    }
}

/// The commands to try, in order, each a program and its arguments with the URL as one
/// argument of its own. `$BROWSER` (a list separated by `:`, `;` on Windows; `%s` stands
/// for the URL, else the URL is appended) comes first. On Windows the URL never goes
/// through `cmd`, which would cut it at the first `&`: `rundll32 url.dll,FileProtocolHandler`
/// receives it as is. Without a display on Unix only `$BROWSER` is tried: a desktop opener
/// would fail or start a text browser in the terminal the person is typing in.
pub fn browser_commands(
    browser_env: Option<&str>,
    platform: Platform,
    has_display: bool,
    url: &str,
) -> Vec<Vec<String>> {
    let mut commands = Vec::new();
    let separator = if platform == Platform::Windows {
        ';'
    } else {
        ':'
    };
    for entry in browser_env.unwrap_or("").split(separator) {
        let mut words: Vec<String> = entry.split_whitespace().map(str::to_string).collect();
        if words.is_empty() {
            continue;
        }
        if words.iter().any(|w| w.contains("%s")) {
            for w in &mut words {
                *w = w.replace("%s", url).replace("%%", "%");
            }
        } else {
            words.push(url.to_string());
        }
        commands.push(words);
    }
    let own = |parts: &[&str]| {
        let mut v: Vec<String> = parts.iter().map(|s| s.to_string()).collect();
        v.push(url.to_string());
        v
    };
    match platform {
        Platform::Windows => commands.push(own(&["rundll32", "url.dll,FileProtocolHandler"])),
        Platform::MacOs => commands.push(own(&["open"])),
        Platform::Unix if has_display => {
            for opener in [&["xdg-open"][..], &["gio", "open"], &["wslview"]] {
                commands.push(own(opener));
            }
        }
        Platform::Unix => {}
    }
    commands
}

/// How long an opener may run before it is taken to have opened the browser (openers
/// return at once; a browser started directly keeps running).
const OPENER_GRACE: Duration = Duration::from_secs(3);

/// Opens `url` in the person's browser; answers with the command that did it.
pub async fn open_system(url: &Url) -> Result<String, BrowserError> {
    let has_display = std::env::var_os("DISPLAY").is_some_and(|v| !v.is_empty())
        || std::env::var_os("WAYLAND_DISPLAY").is_some_and(|v| !v.is_empty());
    let browser_env = std::env::var("BROWSER").ok();
    let commands = browser_commands(
        browser_env.as_deref(),
        Platform::current(),
        has_display,
        url.as_str(),
    );
    for command in commands {
        let Some((program, args)) = command.split_first() else {
            continue;
        };
        let spawned = tokio::process::Command::new(program)
            .args(args)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn();
        let mut child = match spawned {
            Ok(child) => child,
            Err(e) => {
                tracing::debug!(program, error = %e, "browser opener not available");
                continue;
            }
        };
        match tokio::time::timeout(OPENER_GRACE, child.wait()).await {
            Ok(Ok(status)) if status.success() => return Ok(program.clone()),
            Ok(Ok(status)) => {
                tracing::debug!(program, %status, "browser opener failed");
            }
            Ok(Err(e)) => tracing::debug!(program, error = %e, "browser opener failed"),
            // Still running: a browser started in the foreground.
            Err(_) => return Ok(program.clone()),
        }
    }
    Err(BrowserError::NotFound {
        no_display: Platform::current() == Platform::Unix && !has_display,
    })
}

const MAX_HTTP_GET_REDIRECTS: usize = 10;

/// Plays a browser whose authorization server approves at once: GET the authorization URL
/// with redirects not followed, then GET each `Location` until a page answers (the
/// loopback callback's). No cookies, no scripts. It reaches the network as the server's
/// settings say (proxy, certificate authorities, client certificate), as a browser set up
/// for that network would.
pub async fn http_get(
    authorization_url: &Url,
    network: &ServerNetwork,
) -> Result<(), BrowserError> {
    let network = network.clone();
    let client = tokio::task::spawn_blocking(move || {
        let builder = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(Duration::from_secs(10))
            .timeout(Duration::from_secs(30));
        with_server_network(builder, &network)
            .map_err(|e| e.to_string())?
            .build()
            .map_err(|e| e.to_string())
    })
    .await
    .map_err(|e| e.to_string())
    .and_then(|built| built)
    .map_err(|e| BrowserError::HttpGet(format!("cannot build the HTTP client: {e}")))?;
    let mut current = authorization_url.clone();
    for hop in 0..=MAX_HTTP_GET_REDIRECTS {
        let response = client.get(current.clone()).send().await.map_err(|e| {
            BrowserError::HttpGet(format!("GET {} failed: {e}", without_query(&current)))
        })?;
        let status = response.status();
        let location = response
            .headers()
            .get(LOCATION)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        match location {
            Some(location) if status.is_redirection() => {
                current = current.join(&location).map_err(|e| {
                    BrowserError::HttpGet(format!(
                        "{} redirected to an invalid Location: {e}",
                        without_query(&current)
                    ))
                })?;
            }
            _ if hop == 0 => {
                return Err(BrowserError::HttpGet(format!(
                    "the authorization endpoint {} answered HTTP {status} instead of redirecting back; \
                     --browser-mode=http-get works only with servers that approve without a person: \
                     use a real browser",
                    without_query(&current)
                )));
            }
            // The callback listener's page; the login's own result says how it went.
            _ => return Ok(()),
        }
    }
    Err(BrowserError::HttpGet(format!(
        "more than {MAX_HTTP_GET_REDIRECTS} redirects after {}",
        without_query(authorization_url)
    )))
}

/// Origin and path: queries of authorization and callback URLs carry `state` and codes.
fn without_query(url: &Url) -> String {
    format!("{}{}", url.origin().ascii_serialization(), url.path())
}

#[cfg(test)]
mod tests {
    use super::*;

    const URL: &str = "https://as.example.com/authorize?client_id=a&state=b&scope=x%20y";

    fn strings(parts: &[&str]) -> Vec<String> {
        parts.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn browser_env_comes_first_and_takes_the_url_whole() {
        let commands = browser_commands(Some("firefox --new-tab"), Platform::Unix, true, URL);
        assert_eq!(commands[0], strings(&["firefox", "--new-tab", URL]));
        assert_eq!(commands[1], strings(&["xdg-open", URL]));
    }

    #[test]
    fn browser_env_lists_and_placeholders() {
        let commands = browser_commands(Some("w3m -o x=%%1 %s:lynx"), Platform::Unix, false, URL);
        assert_eq!(
            commands,
            vec![
                strings(&["w3m", "-o", "x=%1", URL]),
                strings(&["lynx", URL])
            ]
        );
    }

    #[test]
    fn no_display_means_browser_env_only() {
        assert!(browser_commands(None, Platform::Unix, false, URL).is_empty());
        assert!(browser_commands(Some(""), Platform::Unix, false, URL).is_empty());
    }

    #[test]
    fn windows_never_passes_the_url_through_cmd() {
        let commands = browser_commands(None, Platform::Windows, false, URL);
        assert_eq!(
            commands,
            vec![strings(&["rundll32", "url.dll,FileProtocolHandler", URL])]
        );
        // `;` separates $BROWSER entries on Windows, so a path with `:` survives.
        let commands = browser_commands(
            Some(r"C:\Program Files\b.exe;edge"),
            Platform::Windows,
            false,
            URL,
        );
        assert_eq!(commands[1], strings(&["edge", URL]));
        assert!(commands.iter().all(|c| c[0] != "cmd"));
    }

    #[test]
    fn macos_uses_open() {
        assert_eq!(
            browser_commands(None, Platform::MacOs, false, URL),
            vec![strings(&["open", URL])]
        );
    }
}
