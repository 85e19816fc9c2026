//! The command line: `serve` (the daemon, also the default) and the commands for people.

pub mod serve_client_metadata;

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
}

/// Entry point of the binary.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    init_tracing();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            tracing::error!(error = %e, "cannot start the async runtime");
            return ExitCode::FAILURE;
        }
    };
    let code = runtime.block_on(async {
        match cli.command.unwrap_or(Command::Serve) {
            Command::Serve => serve().await,
            Command::ServeClientMetadata(args) => serve_client_metadata::run(args).await,
        }
    });
    // A blocked stdin read must not keep the process alive: everything worth writing has
    // been written by now.
    runtime.shutdown_background();
    code
}

/// Logs go to stderr; stdout belongs to the protocol.
fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
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
    server.serve(tokio::io::stdin(), tokio::io::stdout()).await;
    server.shutdown().await;
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
