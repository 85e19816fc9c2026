//! Starts a default test kit and prints `{"mcpUrl":..., "issuer":...}` on one line, then
//! serves until killed. Demos use it as a stand-in for a real MCP deployment.
//! `MCP_TESTKIT_LATENCY_MS=<n>` holds every answer for n ms (for timing a real daemon's
//! login from outside, e.g. under strace or heaptrack). `MCP_TESTKIT_DPOP=1` runs the kit in
//! DPoP mode (the authorization server binds tokens, the MCP endpoint checks proofs).
#![allow(clippy::print_stdout)]

use std::io::Write as _;

use mcp_app_server_testkit::{Endpoint, Fault, Kit, KitConfig};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let dpop = std::env::var("MCP_TESTKIT_DPOP").is_ok_and(|v| v == "1");
    let kit = Kit::start(KitConfig {
        dpop,
        ..KitConfig::default()
    })
    .await?;
    if let Some(ms) = std::env::var("MCP_TESTKIT_LATENCY_MS")
        .ok()
        .and_then(|v| v.parse::<u64>().ok())
    {
        kit.faults().set(
            Endpoint::All,
            Fault::Latency(std::time::Duration::from_millis(ms)),
        );
    }
    let line = serde_json::json!({"mcpUrl": kit.mcp_url(), "issuer": kit.issuer()});
    println!("{line}");
    std::io::stdout().flush()?;
    std::future::pending::<()>().await;
    drop(kit);
    Ok(())
}
