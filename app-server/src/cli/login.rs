//! `mcp-app-server login`: one login from the terminal. Prints the authorization URL, opens
//! the browser, and finishes when the browser comes back to the loopback listener or when
//! the person pastes the address the browser landed on (remote and SSH setups), whichever
//! comes first.

use std::sync::Arc;
use std::time::Duration;

use mcp_app_server_protocol::{ClientRegistrationMode, LoginFlowChoice, LoginGrant};
use tokio::io::{AsyncBufReadExt, BufReader, Lines, Stdin};
use tokio::sync::mpsc;
use url::Url;

use super::browser::{self, BrowserMode};
use super::engine::{CliError, Engine};
use super::output::{say, warn};
use crate::config::network::ServerNetwork;
use crate::credentials::unix_now;
use crate::engine::{
    CompleteError, DeviceStarted, LoginBegun, LoginError, LoginOptions, LoginStarted, OAuthEvent,
    ServerTarget,
};
use crate::oauth::discovery::Probe;

/// `login [NAME] [--url URL]`.
#[derive(Debug, clap::Args)]
pub struct LoginArgs {
    /// The server's name in config.toml; with --url, the name to store the credentials
    /// under (default: derived from the URL's host).
    pub name: Option<String>,
    /// Log in to a server that is not in config.toml.
    #[arg(long, value_name = "URL")]
    pub url: Option<Url>,
    /// The account to log in as: a label of your choice, such as your e-mail address. A
    /// new one is added beside the server's other accounts, and the browser is asked to
    /// let you choose the user; default: the account used last.
    #[arg(long, value_name = "LABEL")]
    pub account: Option<String>,
    #[command(flatten)]
    pub flow: FlowArgs,
}

/// How a login is made; shared by `login` and `connect`.
#[derive(Debug, Clone, clap::Args)]
pub struct FlowArgs {
    /// Scopes to ask for (comma- or space-separated) instead of the configured ones or
    /// what the server suggests.
    #[arg(long, value_name = "SCOPES", value_delimiter = ',')]
    pub scopes: Option<Vec<String>>,
    /// Base URL of the client metadata documents this client publishes (CIMD); see
    /// `serve-client-metadata`.
    #[arg(long, value_name = "URL")]
    pub client_metadata_url_base: Option<String>,
    /// One fixed, published client metadata document URL to use as the client id.
    #[arg(long, value_name = "URL", env = "MCP_APP_SERVER_CLIENT_METADATA_URL")]
    pub client_metadata_url: Option<String>,
    /// How to register the client with the authorization server.
    #[arg(long, value_enum, value_name = "HOW", default_value = "auto")]
    pub client_registration: Registration,
    /// Do not open a browser: open the printed URL yourself, then paste the address the
    /// browser lands on.
    #[arg(long)]
    pub no_browser: bool,
    /// How you sign in: `auto` is the device code in an SSH session without a display when
    /// the server offers it, else the browser.
    #[arg(long = "flow", value_enum, value_name = "FLOW", default_value = "auto")]
    pub login_flow: Flow,
    /// Sign in with a device code (RFC 8628): the command prints a URL and a code to enter
    /// on any device; no browser needs to reach this machine. Same as `--flow device`.
    #[arg(long, conflicts_with = "login_flow")]
    pub device: bool,
    /// How to open the authorization URL.
    #[arg(
        long,
        value_enum,
        value_name = "MODE",
        env = "MCP_APP_SERVER_BROWSER",
        default_value = "system"
    )]
    pub browser_mode: BrowserMode,
    /// Seconds to wait for the browser.
    #[arg(long, value_name = "SECS", default_value_t = 300)]
    pub timeout: u64,
}

/// `--flow`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Flow {
    /// The device code in an SSH session without a display, when the server offers it;
    /// else the browser.
    Auto,
    /// The browser login.
    Browser,
    /// The device code.
    Device,
}

/// `--client-registration`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Registration {
    /// Preregistered client id, else a client metadata document when possible, else DCR.
    Auto,
    /// Client ID Metadata Document only.
    Cimd,
    /// Dynamic Client Registration only.
    Dcr,
}

impl FlowArgs {
    /// The engine's options; `scopes` overrides `--scopes` (step-up).
    pub fn options(&self, scopes: Option<Vec<String>>) -> Result<LoginOptions, CliError> {
        if !(1..=3600).contains(&self.timeout) {
            return Err(CliError::Usage(
                "--timeout must be between 1 and 3600 seconds".into(),
            ));
        }
        let scopes = scopes.or_else(|| {
            self.scopes.as_ref().map(|list| {
                list.iter()
                    .flat_map(|s| s.split_whitespace())
                    .map(str::to_string)
                    .collect()
            })
        });
        Ok(LoginOptions {
            scopes: scopes.filter(|s: &Vec<String>| !s.is_empty()),
            client_metadata_url_base: self.client_metadata_url_base.clone(),
            mode: match self.client_registration {
                Registration::Auto => ClientRegistrationMode::Auto,
                Registration::Cimd => ClientRegistrationMode::Cimd,
                Registration::Dcr => ClientRegistrationMode::Dcr,
            },
            timeout: Duration::from_secs(self.timeout),
            // No frontend behind the CLI's login: its tokens are bound only when the server
            // or the config requires it (rule 49). `connect` sends proofs and says so.
            dpop: false,
            frontend: Some("the mcp-app-server command".to_owned()),
            flow: match (self.device, self.login_flow) {
                (true, _) | (_, Flow::Device) => LoginFlowChoice::Device,
                (_, Flow::Browser) => LoginFlowChoice::Browser,
                (_, Flow::Auto) => LoginFlowChoice::Auto,
            },
        })
    }

    /// Applies `--client-metadata-url` to a target.
    pub fn apply(&self, target: &mut ServerTarget) {
        if let Some(url) = &self.client_metadata_url {
            target.client_metadata_url = Some(url.clone());
        }
    }

    fn browser(&self) -> BrowserMode {
        if self.no_browser {
            BrowserMode::None
        } else {
            self.browser_mode
        }
    }
}

/// Lines pasted on stdin, read lazily and shared by the logins of one command.
pub(crate) struct Paste {
    lines: Option<Lines<BufReader<Stdin>>>,
}

impl Paste {
    pub fn stdin() -> Self {
        Self {
            lines: Some(BufReader::new(tokio::io::stdin()).lines()),
        }
    }

    /// The next non-empty line; pending forever once stdin is closed.
    async fn next(&mut self) -> String {
        loop {
            let Some(lines) = self.lines.as_mut() else {
                return std::future::pending().await;
            };
            match lines.next_line().await {
                Ok(Some(line)) if line.trim().is_empty() => continue,
                Ok(Some(line)) => return line,
                Ok(None) | Err(_) => self.lines = None,
            }
        }
    }
}

/// `mcp-app-server login`.
pub async fn run(args: LoginArgs) -> Result<(), CliError> {
    let mut engine = Engine::open()?;
    let result = async {
        let mut target = match (&args.url, &args.name) {
            (Some(url), name) => engine.by_url(url, name.as_deref())?,
            (None, Some(name)) => engine.named(name).await?,
            (None, None) => {
                return Err(CliError::Usage(
                    "name the server to log in to (a [mcp_servers.NAME] table of config.toml), or pass --url <url>".into(),
                ));
            }
        };
        args.flow.apply(&mut target);
        let target = engine.as_account(target, args.account.as_deref()).await?;
        let options = args.flow.options(None)?;
        let mut paste = Paste::stdin();
        login(&mut engine, &target, options, &args.flow, None, &mut paste).await
    }
    .await;
    engine.close().await;
    result
}

/// Runs one login to its end: start, print and open the URL, wait for the callback or a
/// paste, report. `refused` is the 401/403 that made a client ask for it, when there is one.
pub(crate) async fn login(
    engine: &mut Engine,
    target: &ServerTarget,
    options: LoginOptions,
    flow: &FlowArgs,
    refused: Option<Probe>,
    paste: &mut Paste,
) -> Result<(), CliError> {
    let name = target.name.clone();
    say(format!("Logging in to `{name}` ({})", target.url));
    let enterprise = target.enterprise.is_some();
    let begun = engine
        .oauth
        .begin_login(target.clone(), options, refused)
        .await;
    if enterprise && !matches!(begun, Ok(LoginBegun::IdpSignIn(_))) {
        // The end was announced before the answer: take it off the queue.
        while let Some(event) = engine.next_event().await {
            if matches!(&event, OAuthEvent::LoginCompleted { name: n, .. } if *n == name) {
                break;
            }
        }
    }
    match begun.map_err(|e| CliError::login(&name, e))? {
        LoginBegun::Browser(started) | LoginBegun::IdpSignIn(started) => {
            follow_login(engine, target, started, flow, paste).await
        }
        LoginBegun::Device(started) => follow_device_login(engine, target, started).await,
        LoginBegun::Obtained(LoginGrant::EnterpriseManaged) => {
            say(format!(
                "Logged in to `{name}` through the enterprise identity provider{}.",
                summary(engine, target).await
            ));
            Ok(())
        }
        LoginBegun::Obtained(grant) => {
            say(format!(
                "Logged in to `{name}` with the {} grant, no browser needed{}.",
                grant_label(grant),
                summary(engine, target).await
            ));
            Ok(())
        }
    }
}

fn grant_label(grant: LoginGrant) -> &'static str {
    match grant {
        LoginGrant::AuthorizationCode => "authorization code",
        LoginGrant::ClientCredentials => "client credentials",
        LoginGrant::JwtBearer => "JWT bearer (workload identity)",
        LoginGrant::EnterpriseManaged => "enterprise-managed",
        LoginGrant::DeviceCode => "device code",
        LoginGrant::SharedLogin => "shared login (another server at the same authorization server)",
    }
}

/// Takes a device login to its end: print the URL and the code (on stdout, as the browser
/// login's URL), wait for the daemon's polling to end.
pub(crate) async fn follow_device_login(
    engine: &mut Engine,
    target: &ServerTarget,
    started: DeviceStarted,
) -> Result<(), CliError> {
    let name = target.name.clone();
    say(format!(
        "On any device, open {} and enter this code:",
        started.verification_uri
    ));
    say(format!("\n    {}\n", started.user_code));
    if let Some(complete) = &started.verification_uri_complete {
        say(format!(
            "Or open {complete} (check that it shows the same code)."
        ));
        if let Some(qr) = super::qr::render(complete.as_str()) {
            say(qr);
        }
    }
    let left = started.expires_at.saturating_sub(unix_now()).max(0);
    say(format!(
        "Waiting for you to approve the login (the code expires in {left} s; Ctrl-C gives up)."
    ));
    let result = loop {
        match engine.next_event().await {
            Some(OAuthEvent::LoginCompleted {
                name: n, result, ..
            }) if n == name => break result,
            Some(_) => {}
            None => break Err(Arc::new(LoginError::ShuttingDown)),
        }
    };
    report(engine, target, result).await
}

/// Says how a login that went through the user ended.
async fn report(
    engine: &Engine,
    target: &ServerTarget,
    result: Result<(), Arc<LoginError>>,
) -> Result<(), CliError> {
    match result {
        Ok(()) => {
            say(format!(
                "Logged in to `{}`{}.",
                target.name,
                summary(engine, target).await
            ));
            Ok(())
        }
        Err(e) => Err(CliError::login(&target.name, e)),
    }
}

/// Takes a started login to its end: print and open the URL, wait for the callback or a
/// paste, report.
pub(crate) async fn follow_login(
    engine: &mut Engine,
    target: &ServerTarget,
    started: LoginStarted,
    flow: &FlowArgs,
    paste: &mut Paste,
) -> Result<(), CliError> {
    let name = target.name.clone();
    let mode = flow.browser();
    let (browser_tx, mut browser_rx) = mpsc::unbounded_channel();
    show_and_open(
        &started.authorization_url,
        mode,
        &browser_tx,
        &target.network,
    )
    .await;
    say(format!(
        "Waiting for the browser to return to {} (up to {} s; Ctrl-C gives up).",
        started.redirect_uri, flow.timeout
    ));
    if mode != BrowserMode::HttpGet {
        say(
            "If the browser cannot reach this machine (SSH, container), paste the address it shows \
             after you approve access here, then press Enter.",
        );
    }

    let result = loop {
        tokio::select! {
            event = engine.next_event() => match event {
                Some(OAuthEvent::LoginCompleted { name: n, result, .. }) if n == name => break result,
                Some(OAuthEvent::LoginRestarted { name: n, authorization_url, reason }) if n == name => {
                    say(format!("The login restarted: {reason}"));
                    match Url::parse(&authorization_url) {
                        Ok(url) => show_and_open(&url, mode, &browser_tx, &target.network).await,
                        Err(_) => say(format!("    {authorization_url}")),
                    }
                }
                Some(_) => {}
                None => break Err(Arc::new(LoginError::ShuttingDown)),
            },
            line = paste.next() => {
                match engine.oauth.complete(&name, &line).await {
                    // The completion event follows.
                    Ok(()) => {}
                    Err(CompleteError::Paste(e)) => warn(format!("Not accepted: {e}")),
                    // The flow reports its own end (or its restart) as an event.
                    Err(e) => tracing::debug!(error = %e, "pasted redirect did not finish the login"),
                }
            }
            Some(failure) = browser_rx.recv() => {
                warn(format!("The browser step failed: {failure}"));
                engine.oauth.cancel(&name);
            }
        }
    };
    report(engine, target, result).await
}

/// Prints the URL and opens it as `mode` says. An `http-get` browser runs in the background
/// and reports a failure on `failures`.
async fn show_and_open(
    url: &Url,
    mode: BrowserMode,
    failures: &mpsc::UnboundedSender<String>,
    network: &ServerNetwork,
) {
    say("Open this URL in a browser to authorize access:");
    say(format!("\n    {url}\n"));
    match mode {
        BrowserMode::None => {}
        BrowserMode::System => match browser::open_system(url).await {
            Ok(how) => say(format!("Opened the browser ({how}).")),
            Err(e) => say(format!(
                "Could not open a browser ({e}); open the URL yourself."
            )),
        },
        BrowserMode::HttpGet => {
            let (url, failures, network) = (url.clone(), failures.clone(), network.clone());
            tokio::spawn(async move {
                if let Err(e) = browser::http_get(&url, &network).await {
                    let _ = failures.send(e.to_string());
                }
            });
        }
    }
}

/// What was stored, for the success line: never a token.
async fn summary(engine: &Engine, target: &ServerTarget) -> String {
    let Ok(Some(creds)) = engine.oauth.store_load(target.key()).await else {
        return String::new();
    };
    let mut parts = Vec::new();
    if !creds.scopes.is_empty() {
        parts.push(format!("scopes: {}", creds.scopes.join(" ")));
    }
    if let Some(at) = creds.expires_at {
        parts.push(format!(
            "access token {}",
            super::status::expiry_text(at, unix_now())
        ));
    }
    parts.push(format!(
        "refresh token: {}",
        if creds.refresh_token.is_some() {
            "yes"
        } else {
            "no"
        }
    ));
    format!(" ({})", parts.join("; "))
}
