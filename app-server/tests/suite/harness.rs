//! Drives an in-memory daemon connection, or the real binary over pipes.
#![allow(dead_code)]

use std::collections::VecDeque;
use std::path::Path;
use std::time::Duration;

use mcp_app_server::home::Home;
use mcp_app_server::rpc::{AppServer, ServerOptions};
use mcp_app_server::transport::{Framing, Incoming, MessageReader, write_message};
use serde_json::{Value, json};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, BufReader, DuplexStream};

pub const TIMEOUT: Duration = Duration::from_secs(20);

/// A JSON-RPC client over any byte stream.
pub struct Client<W, R> {
    writer: W,
    reader: MessageReader<BufReader<R>>,
    framing: Framing,
    backlog: VecDeque<Value>,
    next_id: i64,
}

pub type MemClient = Client<DuplexStream, DuplexStream>;

/// Starts a daemon on `home` and connects one in-memory client to it.
pub fn start(home: &Path) -> (AppServer, MemClient) {
    let server = AppServer::new(ServerOptions::new(Home::at(home))).expect("daemon starts");
    let client = connect(&server);
    (server, client)
}

/// Opens another in-memory connection to a running daemon.
pub fn connect(server: &AppServer) -> MemClient {
    let (client_w, server_r) = tokio::io::duplex(1 << 20);
    let (server_w, client_r) = tokio::io::duplex(1 << 20);
    let s = server.clone();
    tokio::spawn(async move { s.serve(server_r, server_w).await });
    Client::new(client_w, client_r)
}

impl<W: AsyncWrite + Unpin, R: AsyncRead + Unpin> Client<W, R> {
    pub fn new(writer: W, reader: R) -> Self {
        Self {
            writer,
            reader: MessageReader::new(BufReader::new(reader), 64 << 20),
            framing: Framing::Lines,
            backlog: VecDeque::new(),
            next_id: 1,
        }
    }

    pub fn with_framing(mut self, framing: Framing) -> Self {
        self.framing = framing;
        self
    }

    pub async fn send_raw(&mut self, bytes: &[u8]) {
        self.writer.write_all(bytes).await.unwrap();
        self.writer.flush().await.unwrap();
    }

    pub async fn send(&mut self, value: &Value) {
        let bytes = serde_json::to_vec(value).unwrap();
        write_message(&mut self.writer, self.framing, &bytes)
            .await
            .unwrap();
    }

    /// Reads the next message off the wire (ignoring the backlog).
    pub async fn read(&mut self) -> Value {
        match tokio::time::timeout(TIMEOUT, self.reader.next()).await {
            Ok(Ok(Some(Incoming::Message(bytes)))) => serde_json::from_slice(&bytes).unwrap(),
            other => panic!("expected a message, got {other:?}"),
        }
    }

    /// The framing the daemon replied in.
    pub fn reply_framing(&self) -> Option<Framing> {
        self.reader.framing()
    }

    /// None when the daemon closed the connection.
    pub async fn read_eof(&mut self) -> bool {
        matches!(
            tokio::time::timeout(TIMEOUT, self.reader.next()).await,
            Ok(Ok(None))
        )
    }

    pub async fn request(&mut self, method: &str, params: Value) -> Value {
        let id = self.next_id;
        self.next_id += 1;
        self.send(&json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}))
            .await;
        self.response(id).await
    }

    /// The `result` of a request that must succeed.
    pub async fn ok(&mut self, method: &str, params: Value) -> Value {
        let reply = self.request(method, params).await;
        match reply.get("result") {
            Some(r) => r.clone(),
            None => panic!("{method} failed: {reply}"),
        }
    }

    /// The `error` of a request that must fail.
    pub async fn err(&mut self, method: &str, params: Value) -> Value {
        let reply = self.request(method, params).await;
        match reply.get("error") {
            Some(e) => e.clone(),
            None => panic!("{method} should have failed: {reply}"),
        }
    }

    pub async fn response(&mut self, id: i64) -> Value {
        if let Some(pos) = self.backlog.iter().position(|m| m["id"] == json!(id)) {
            return self.backlog.remove(pos).unwrap();
        }
        loop {
            let m = self.read().await;
            if m["id"] == json!(id) {
                return m;
            }
            self.backlog.push_back(m);
        }
    }

    pub async fn notification(&mut self, method: &str) -> Value {
        if let Some(pos) = self
            .backlog
            .iter()
            .position(|m| m["method"] == json!(method))
        {
            return self.backlog.remove(pos).unwrap()["params"].clone();
        }
        loop {
            let m = self.read().await;
            if m["method"] == json!(method) {
                return m["params"].clone();
            }
            self.backlog.push_back(m);
        }
    }

    /// The answer to `id` if it has already been read (without waiting).
    pub fn take_response(&mut self, id: i64) -> Option<Value> {
        let pos = self.backlog.iter().position(|m| m["id"] == json!(id))?;
        self.backlog.remove(pos)
    }

    /// A notification with this method already read (without waiting).
    pub fn take_notification(&mut self, method: &str) -> Option<Value> {
        let pos = self
            .backlog
            .iter()
            .position(|m| m["method"] == json!(method))?;
        self.backlog.remove(pos).map(|m| m["params"].clone())
    }

    /// Sends a request without waiting for its answer; returns its id.
    pub async fn send_request(&mut self, method: &str, params: Value) -> i64 {
        let id = self.next_id;
        self.next_id += 1;
        self.send(&json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}))
            .await;
        id
    }

    /// Notifications received so far (without waiting) with this method.
    pub fn backlog_count(&self, method: &str) -> usize {
        self.backlog
            .iter()
            .filter(|m| m["method"] == json!(method))
            .count()
    }

    pub async fn initialize(&mut self) -> Value {
        self.ok(
            "initialize",
            json!({"clientInfo": {"name": "test", "version": "1"}}),
        )
        .await
    }

    /// `initialize` of a frontend that sends DPoP proofs (`capabilities.dpop`).
    pub async fn initialize_dpop(&mut self) -> Value {
        self.ok(
            "initialize",
            json!({"clientInfo": {"name": "test-dpop", "version": "1"},
                   "capabilities": {"dpop": true}}),
        )
        .await
    }

    pub async fn initialize_opting_out(&mut self, methods: &[&str]) -> Value {
        self.ok(
            "initialize",
            json!({"clientInfo": {"name": "test", "version": "1"},
                   "capabilities": {"optOutNotificationMethods": methods}}),
        )
        .await
    }

    /// The writing and reading halves, for a test that drives them apart.
    pub fn into_parts(self) -> (W, MessageReader<BufReader<R>>) {
        (self.writer, self.reader)
    }

    pub async fn close(mut self) {
        self.writer.shutdown().await.unwrap();
    }
}

impl<R: AsyncRead + Unpin> Client<DuplexStream, R> {
    /// Ends the daemon's input (EOF) while still reading its output.
    pub fn close_input(&mut self) {
        let (dead, _) = tokio::io::duplex(1);
        drop(std::mem::replace(&mut self.writer, dead));
    }
}

pub fn write_config(home: &Path, text: &str) {
    std::fs::write(home.join("config.toml"), text).unwrap();
}
