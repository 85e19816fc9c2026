//! Starts a default test kit and prints `{"mcpUrl":..., "issuer":...}` on one line, then
//! serves until killed. Demos use it as a stand-in for a real MCP deployment.
#![allow(clippy::print_stdout)]

use std::io::Write as _;

use mcp_app_server_testkit::{Kit, KitConfig};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let kit = Kit::start(KitConfig::default()).await?;
    let line = serde_json::json!({"mcpUrl": kit.mcp_url(), "issuer": kit.issuer()});
    println!("{line}");
    std::io::stdout().flush()?;
    std::future::pending::<()>().await;
    drop(kit);
    Ok(())
}
