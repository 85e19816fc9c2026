//! A complete login on loopback, printed as the JSON-RPC exchange a frontend would see.
//!
//! Starts the test kit's authorization server and MCP server, runs the daemon over an
//! in-memory pipe (the same code that serves stdio), asks it to log in, plays the browser,
//! then asks for the status and a token.
//!
//! Run: `cargo run -p mcp-app-server --example demo`
#![allow(clippy::print_stdout)]

use std::time::Duration;

use mcp_app_server::home::Home;
use mcp_app_server::rpc::{AppServer, ServerOptions};
use mcp_app_server::transport::{Framing, Incoming, MessageReader, write_message};
use mcp_app_server_testkit::{Kit, KitConfig, browser_visit};
use serde_json::{Value, json};
use tokio::io::{BufReader, DuplexStream};

struct Frontend {
    writer: DuplexStream,
    reader: MessageReader<BufReader<DuplexStream>>,
    next_id: i64,
}

impl Frontend {
    async fn send(&mut self, method: &str, params: Value) -> i64 {
        let id = self.next_id;
        self.next_id += 1;
        let msg = json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params});
        println!(">> {msg}");
        write_message(
            &mut self.writer,
            Framing::Lines,
            &serde_json::to_vec(&msg).unwrap(),
        )
        .await
        .unwrap();
        id
    }

    async fn read(&mut self) -> Value {
        match tokio::time::timeout(Duration::from_secs(30), self.reader.next()).await {
            Ok(Ok(Some(Incoming::Message(bytes)))) => {
                let v: Value = serde_json::from_slice(&bytes).unwrap();
                let mut shown = v.clone();
                if let Some(token) = shown.pointer_mut("/result/accessToken") {
                    *token = json!("<redacted>");
                }
                println!("<< {shown}");
                v
            }
            other => panic!("the daemon did not answer: {other:?}"),
        }
    }

    async fn call(&mut self, method: &str, params: Value) -> Value {
        let id = self.send(method, params).await;
        loop {
            let m = self.read().await;
            if m["id"] == json!(id) {
                return m;
            }
        }
    }

    async fn until(&mut self, method: &str) -> Value {
        loop {
            let m = self.read().await;
            if m["method"] == method {
                return m;
            }
        }
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let kit = Kit::start(KitConfig::default()).await?;
    let home = tempfile::tempdir()?;
    std::fs::write(
        home.path().join("config.toml"),
        format!(
            "mcp_oauth_credentials_store = \"file\"\n\n[mcp_servers.demo]\nurl = \"{}\"\n",
            kit.mcp_url()
        ),
    )?;
    println!(
        "# MCP server {} (authorization server {})",
        kit.mcp_url(),
        kit.issuer()
    );
    println!("# daemon home {}\n", home.path().display());

    let server = AppServer::new(ServerOptions::new(Home::at(home.path())))?;
    let (client_w, server_r) = tokio::io::duplex(1 << 20);
    let (server_w, client_r) = tokio::io::duplex(1 << 20);
    let daemon = server.clone();
    tokio::spawn(async move { daemon.serve(server_r, server_w).await });
    let mut fe = Frontend {
        writer: client_w,
        reader: MessageReader::new(BufReader::new(client_r), 16 << 20),
        next_id: 1,
    };

    fe.call(
        "initialize",
        json!({"clientInfo": {"name": "demo", "version": "1"}}),
    )
    .await;
    fe.call("mcpServerStatus/list", json!({})).await;
    let login = fe
        .call("mcpServer/oauth/login", json!({"name": "demo"}))
        .await;
    let url = login["result"]["authorizationUrl"]
        .as_str()
        .ok_or_else(|| anyhow::anyhow!("login failed: {login}"))?
        .to_string();
    println!("\n# the browser opens the authorization URL and is sent back to the daemon");
    let page = browser_visit(&url).await?;
    let landed = page.final_url.split('?').next().unwrap_or_default();
    println!("# browser landed on {landed} (HTTP {})\n", page.status);
    let done = fe.until("mcpServer/oauthLogin/completed").await;
    fe.call("mcpServerStatus/list", json!({})).await;
    fe.call("mcpServer/oauth/token", json!({"name": "demo"}))
        .await;
    server.shutdown().await;
    if done["params"]["success"] != true {
        anyhow::bail!("the login failed");
    }
    println!("\n# login completed");
    Ok(())
}
