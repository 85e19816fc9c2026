//! The command line: `serve` (the daemon, also the default) and the commands for people.

mod browser;
mod callback_url;
mod connect;
mod engine;
mod login;
mod logout;
mod mcp_client;
mod mcp_sse;
mod output;
mod qr;
mod secret;
pub mod serve_client_metadata;
mod status;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::home::Home;
use crate::rpc::{AppServer, ServerOptions};

#[derive(Debug, Parser)]
#[command(
    name = "mcp-app-server",
    version,
    about = "Logs frontends in to remote MCP servers with OAuth and keeps the credentials"
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the daemon: JSON-RPC on stdin/stdout (the default).
    Serve,
    /// Serve the Client ID Metadata Documents that `clientMetadataUrlBase` client ids point
    /// at (stateless; put it behind a TLS reverse proxy).
    ServeClientMetadata(serve_client_metadata::ServeClientMetadataArgs),
    /// Log in to an MCP server: prints the authorization URL, opens the browser, and waits
    /// for it to come back (or for the address it landed on to be pasted).
    Login(login::LoginArgs),
    /// Delete a server's stored credentials (and revoke them with --revoke).
    Logout(logout::LogoutArgs),
    /// Show every server and its login state.
    Status(status::StatusArgs),
    /// Print the exact redirect URI to register with a server that demands one (needs a
    /// fixed callback port).
    CallbackUrl(callback_url::CallbackUrlArgs),
    /// Connect to an MCP server over Streamable HTTP, logging in when it asks: initialize,
    /// list the tools, and optionally call one.
    Connect(connect::ConnectArgs),
    /// Keep a server's client secret in the OS keyring (`client_secret_keyring`).
    #[command(subcommand)]
    Secret(secret::SecretCommand),
}

/// Async worker threads of the daemon. Its work on them is short (requests, replies, the
/// steps of logins); everything that may wait or take long (the credential store, the
/// keyring) runs on blocking threads. With a second worker the connection's tasks are
/// spread over two threads that wake each other for every message, and on a machine
/// whose cores the frontend shares they also take turns with it: on 2 cores, token
/// requests were answered at half the rate, with twice the p99 (docs/benchmarks.md).
const DAEMON_WORKER_THREADS: usize = 1;

/// Tokio's own setting of the worker count, which overrides [`DAEMON_WORKER_THREADS`].
const WORKER_THREADS_ENV: &str = "TOKIO_WORKER_THREADS";

/// Entry point of the binary.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let command = cli.command.unwrap_or(Command::Serve);
    // The daemon logs its progress; a command for people shows its own and logs only
    // problems (RUST_LOG overrides both).
    init_tracing(if matches!(command, Command::Serve) {
        "info"
    } else {
        "warn"
    });
    limit_malloc_arenas();
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    if matches!(command, Command::Serve) && std::env::var_os(WORKER_THREADS_ENV).is_none() {
        builder.worker_threads(DAEMON_WORKER_THREADS);
    }
    let runtime = match builder.enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            tracing::error!(error = %e, "cannot start the async runtime");
            return ExitCode::FAILURE;
        }
    };
    let code = runtime.block_on(async {
        match command {
            Command::Serve => serve().await,
            Command::ServeClientMetadata(args) => serve_client_metadata::run(args).await,
            Command::Login(args) => finish(login::run(args)).await,
            Command::Logout(args) => finish(logout::run(args)).await,
            Command::Status(args) => finish(status::run(args)).await,
            Command::CallbackUrl(args) => finish(callback_url::run(args)).await,
            Command::Connect(args) => finish(connect::run(args)).await,
            Command::Secret(command) => finish(secret::run(command)).await,
        }
    });
    // A blocked stdin read must not keep the process alive: everything worth writing has
    // been written by now.
    runtime.shutdown_background();
    code
}

/// glibc gives every thread that allocates an arena of its own (up to 8 per core), and each
/// keeps the memory freed into it: the daemon's worker and blocking threads then hold
/// several copies of heap left over from the same work (with 1,000 logins pending, about
/// 8 MiB more resident; after they complete, 78 instead of 46 MiB). Two arenas, one per
/// worker thread on a 2-core machine, keep that to two (docs/benchmarks.md).
#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[allow(unsafe_code)]
fn limit_malloc_arenas() {
    // SAFETY: `mallopt` only sets an allocator parameter; it is called before the runtime
    // starts any thread, and M_ARENA_MAX takes any positive count.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 2);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn limit_malloc_arenas() {}

/// Runs a command for people: its error on stderr and exit code 1 on failure; Ctrl-C gives
/// up at once (a pending login ends with the process) with exit code 130.
async fn finish(
    command: impl std::future::Future<Output = Result<(), engine::CliError>>,
) -> ExitCode {
    tokio::select! {
        result = command => match result {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                output::warn(format!("error: {e}"));
                ExitCode::FAILURE
            }
        },
        _ = tokio::signal::ctrl_c() => {
            output::warn("Interrupted.");
            ExitCode::from(130)
        }
    }
}

/// Logs go to stderr; stdout belongs to the protocol.
fn init_tracing(default_level: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_level));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .try_init();
}

async fn serve() -> ExitCode {
    let home = match Home::from_env() {
        Ok(h) => h,
        Err(e) => {
            tracing::error!(error = %e, "cannot find the configuration directory; set MCP_APP_SERVER_HOME");
            return ExitCode::FAILURE;
        }
    };
    let server = match AppServer::new(ServerOptions::new(home)) {
        Ok(s) => s,
        Err(e) => {
            tracing::error!(error = %e, "cannot start the daemon");
            return ExitCode::FAILURE;
        }
    };
    let signals = server.clone();
    tokio::spawn(async move {
        wait_for_termination().await;
        tracing::info!("termination signal received; shutting down");
        signals.shutdown().await;
    });
    // Returns once the input ended or a signal came, after the shutdown (bounded even when
    // the frontend stopped reading stdout).
    let (input, output) = crate::transport::stdio();
    server.run(input, output).await;
    ExitCode::SUCCESS
}

#[cfg(unix)]
async fn wait_for_termination() {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = match signal(SignalKind::terminate()) {
        Ok(s) => s,
        Err(_) => return std::future::pending().await,
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
}

#[cfg(not(unix))]
async fn wait_for_termination() {
    let _ = tokio::signal::ctrl_c().await;
}
