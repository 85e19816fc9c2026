//! `mcp-app-server serve-client-metadata`: the stateless host of the callback-scoped Client ID
//! Metadata Documents that the daemon uses as client ids (rule 11).
//!
//! It answers `GET <base path>/<callback_id>/client.json?redirect_uri=...` with the document
//! whose `client_id` is that URL under the configured *public* base, byte for byte. The
//! public base is configured rather than taken from the request because behind a TLS reverse
//! proxy the host sees neither the public scheme nor, often, the public host. URL building,
//! request parsing and the document all come from `oauth/registration/cimd.rs`, the module
//! the daemon builds its client ids with.
//!
//! It is meant to face the internet (behind a TLS proxy): `server.rs` puts timeouts and a
//! connection cap on the socket (rule 38), `respond.rs` turns a request head into an answer,
//! `document.rs` renders the document.

mod document;
mod respond;
mod server;

use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

use url::Url;

pub use document::{
    Answer, DocumentHost, HostConfigError, MAX_CLIENT_NAME_BYTES, MAX_DOCUMENT_BYTES, MAX_URI_BYTES,
};
pub use respond::CACHE_CONTROL;
pub use server::{DEFAULT_BACKLOG, DEFAULT_MAX_CONNECTIONS, Limits, bind, serve, serve_with};

/// Where the host listens when no `--listen` is given.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8080";
/// File descriptors kept for everything but client connections (standard streams, the
/// runtime's, the listening socket), below the process's limit.
const RESERVED_DESCRIPTORS: u64 = 64;

/// Flags of `serve-client-metadata`.
#[derive(Debug, Clone, clap::Args)]
pub struct ServeClientMetadataArgs {
    /// Address to listen on (plain HTTP: put a TLS reverse proxy in front).
    #[arg(long, default_value = DEFAULT_LISTEN, env = "MCP_CLIENT_METADATA_LISTEN")]
    pub listen: SocketAddr,
    /// The public https URL the documents are served under, e.g.
    /// `https://ide.example.com/mcp/oauth`. Frontends pass the same value as
    /// `clientMetadataUrlBase`; its path is the prefix this host answers under. Plain http
    /// only for loopback hosts (local testing).
    #[arg(long, env = "MCP_CLIENT_METADATA_PUBLIC_BASE_URL")]
    pub public_base_url: String,
    /// `client_name` in the documents: what the consent screen shows.
    #[arg(long, default_value = crate::engine::CLIENT_NAME, env = "MCP_CLIENT_METADATA_CLIENT_NAME")]
    pub client_name: String,
    /// Optional `client_uri` (https): the product's home page.
    #[arg(long, env = "MCP_CLIENT_METADATA_CLIENT_URI")]
    pub client_uri: Option<String>,
    /// Optional `logo_uri` (https).
    #[arg(long, env = "MCP_CLIENT_METADATA_LOGO_URI")]
    pub logo_uri: Option<String>,
    /// Connections open at once; at the cap the idlest is closed for a new one. Lowered to
    /// fit the process's file descriptor limit.
    #[arg(long, default_value_t = DEFAULT_MAX_CONNECTIONS, value_parser = clap::value_parser!(u32).range(1..), env = "MCP_CLIENT_METADATA_MAX_CONNECTIONS")]
    pub max_connections: u32,
    /// Time a new connection gets to send its first complete request head (`10s`, `500ms`).
    #[arg(long, default_value = "10s", value_parser = parse_duration, env = "MCP_CLIENT_METADATA_HEADER_TIMEOUT")]
    pub header_timeout: Duration,
    /// Time a kept-alive connection gets, after a request, to send the next complete head.
    #[arg(long, default_value = "30s", value_parser = parse_duration, env = "MCP_CLIENT_METADATA_IDLE_TIMEOUT")]
    pub idle_timeout: Duration,
    /// Time requests under way get to finish after SIGTERM or Ctrl-C.
    #[arg(long, default_value = "5s", value_parser = parse_duration, env = "MCP_CLIENT_METADATA_SHUTDOWN_TIMEOUT")]
    pub shutdown_timeout: Duration,
    /// Pending connections the kernel queues before they are accepted (Linux caps it at
    /// `net.core.somaxconn`).
    #[arg(long, default_value_t = DEFAULT_BACKLOG, value_parser = clap::value_parser!(u32).range(1..), env = "MCP_CLIENT_METADATA_BACKLOG")]
    pub backlog: u32,
}

/// `10s`, `500ms`, `2m`, or a number of seconds; from 1 ms to one day.
fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let (number, unit) = match text.find(|c: char| !c.is_ascii_digit()) {
        Some(at) => text.split_at(at),
        None => (text, "s"),
    };
    let number: u64 = number
        .parse()
        .map_err(|_| format!("{text:?} is not a duration such as 10s or 500ms"))?;
    let duration = match unit {
        "ms" => Duration::from_millis(number),
        "s" => Duration::from_secs(number),
        "m" => Duration::from_secs(number.saturating_mul(60)),
        _ => return Err(format!("{text:?}: the unit must be ms, s or m")),
    };
    if duration < Duration::from_millis(1) || duration > Duration::from_secs(86_400) {
        return Err(format!("{text:?} is not between 1ms and 24h"));
    }
    Ok(duration)
}

/// The subcommand: validate the flags, listen, announce the address on stderr, serve until
/// SIGTERM or Ctrl-C, then shut down within `--shutdown-timeout`.
pub async fn run(args: ServeClientMetadataArgs) -> ExitCode {
    let host = match DocumentHost::new(
        &args.public_base_url,
        &args.client_name,
        args.client_uri.as_deref(),
        args.logo_uri.as_deref(),
    ) {
        Ok(h) => h,
        Err(e) => {
            tracing::error!(error = %e, "cannot serve client metadata documents");
            return ExitCode::FAILURE;
        }
    };
    let listener = match bind(args.listen, args.backlog) {
        Ok(l) => l,
        Err(e) => {
            tracing::error!(address = %args.listen, error = %e, "cannot listen; choose another --listen address");
            return ExitCode::FAILURE;
        }
    };
    let limits = Limits {
        max_connections: fit_descriptor_limit(args.max_connections as usize),
        header_timeout: args.header_timeout,
        idle_timeout: args.idle_timeout,
        shutdown_timeout: args.shutdown_timeout,
        ..Limits::default()
    };
    let address = listener.local_addr().unwrap_or(args.listen);
    announce(address, host.public_base(), limits.max_connections);
    match serve_with(listener, host, limits, super::wait_for_termination()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = %e, "the client metadata host failed");
            ExitCode::FAILURE
        }
    }
}

/// The connection cap that fits the process's file descriptor limit: the soft limit is
/// raised (up to the hard one) to make room for `wanted` connections, and the cap lowered
/// when it still does not fit, so connections can never exhaust the descriptors.
#[cfg(target_os = "linux")]
fn fit_descriptor_limit(wanted: usize) -> usize {
    use rustix::process::{Resource, getrlimit, setrlimit};
    let wanted_u64 = u64::try_from(wanted).unwrap_or(u64::MAX);
    let need = wanted_u64.saturating_add(RESERVED_DESCRIPTORS);
    let mut limit = getrlimit(Resource::Nofile);
    if let Some(current) = limit.current
        && current < need
    {
        let raised = limit.maximum.map_or(need, |max| max.min(need));
        if raised > current {
            limit.current = Some(raised);
            if setrlimit(Resource::Nofile, limit).is_err() {
                limit.current = Some(current);
            }
        }
    }
    let Some(current) = limit.current else {
        return wanted;
    };
    let room = current.saturating_sub(RESERVED_DESCRIPTORS).max(1);
    if room < wanted_u64 {
        tracing::warn!(
            wanted,
            allowed = room,
            descriptor_limit = current,
            "--max-connections lowered to fit the file descriptor limit (raise it with ulimit -n)"
        );
        usize::try_from(room).unwrap_or(wanted)
    } else {
        wanted
    }
}

#[cfg(not(target_os = "linux"))]
fn fit_descriptor_limit(wanted: usize) -> usize {
    let _ = RESERVED_DESCRIPTORS;
    wanted
}

/// One fixed line on stderr, whatever `RUST_LOG` says, so scripts and tests can find the
/// port of `--listen 127.0.0.1:0` and the connection cap in force.
#[allow(clippy::print_stderr)]
fn announce(address: SocketAddr, public_base: &Url, max_connections: usize) {
    eprintln!(
        "serve-client-metadata listening on http://{address} for {public_base} (at most {max_connections} connections)"
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_with_units_and_bounds() {
        assert_eq!(parse_duration("10s"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_duration("7"), Ok(Duration::from_secs(7)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        for bad in ["", "s", "0s", "10h", "-1s", "1.5s", "25h", "100000m"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }
}
