// A whole frontend of mcp-app-server in one file: it spawns the daemon, initializes with its
// capabilities, lists the servers, logs in through the browser when needed, calls the MCP
// server with the daemon's token (with a DPoP proof per request when the token is bound),
// passes a 401/403 on to the daemon and follows its answer, and logs out.
// docs/frontends.md shows it; CI type-checks it against the packed npm package and runs it
// against the MCP TypeScript SDK's demo server (tests/frontend/frontend.test.mjs).
//
// Run (after compiling with tsc): node example-frontend.js <daemon binary> <server name>
//   MCP_APP_SERVER_HOME  the daemon's home (config.toml names the server); default: XDG dirs
//   BROWSER              the command that opens a URL; default xdg-open (open on macOS)
// It prints what it does on stderr and one JSON summary line on stdout.

import { spawn } from "node:child_process";
import {
  McpAppServerError,
  PROTOCOL_VERSION,
  spawnAppServer,
  type OauthChallengeResponse,
  type OauthLoginResponse,
} from "@mcp-app-server/protocol";

const [daemonPath, serverName] = process.argv.slice(2);
if (!daemonPath || !serverName) {
  console.error("usage: node example-frontend.js <daemon binary> <server name>");
  process.exit(2);
}
const log = (line: string): void => void process.stderr.write(`example: ${line}\n`);

/** Opens `url` in the user's browser (a VS Code extension calls `vscode.env.openExternal`). */
function openBrowser(url: string): Promise<void> {
  const [command, ...args] = (process.env.BROWSER ?? (process.platform === "darwin" ? "open" : "xdg-open")).split(" ");
  return new Promise((resolve, reject) => {
    const child = spawn(command!, [...args, url], { stdio: ["ignore", "ignore", "inherit"] });
    child.on("error", reject);
    child.on("exit", (code) => (code === 0 ? resolve() : reject(new Error(`${command} exited with ${code}`))));
  });
}

// 1. Spawn the daemon. Without `home` it uses the user's XDG config and state dirs, shared
//    with the CLI and every other frontend.
const client = spawnAppServer({
  bin: daemonPath,
  ...(process.env.MCP_APP_SERVER_HOME ? { home: process.env.MCP_APP_SERVER_HOME } : {}),
  stderr: (text) => void process.stderr.write(text),
});

// 2. Initialize. `dpop: true` says this frontend sends DPoP proofs: logins it starts may bind
//    tokens to the daemon's key, and it is handed such tokens. A frontend that cannot send
//    proofs leaves it out and only ever gets Bearer tokens it can use.
const init = await client.initialize({
  clientInfo: { name: "example-frontend", version: "1.0.0" },
  capabilities: { dpop: true },
});
if (init.protocolVersion.split(".")[0] !== PROTOCOL_VERSION.split(".")[0]) {
  throw new Error(`the daemon speaks protocol ${init.protocolVersion}, this frontend ${PROTOCOL_VERSION}`);
}
log(`daemon ${init.serverInfo.version}, protocol ${init.protocolVersion}`);

// 3. Status: the configured servers and where each stands.
const { data } = await client.listMcpServerStatus();
const server = data.find((s) => s.name === serverName);
if (!server?.url) throw new Error(`no HTTP server named ${serverName} in config.toml`);
const mcpUrl = server.url;
log(`${server.name}: ${server.authStatus}`);
client.onAuthStatusChanged(({ name, authStatus }) => log(`${name} is now ${authStatus}`));

// 4. Log in: subscribe first, start the login, open the browser, wait for `completed`.
async function logIn(name: string): Promise<void> {
  const restarted = client.onLoginRestarted((r) => {
    if (r.name === name) void openBrowser(r.authorizationUrl);
  });
  try {
    for (;;) {
      const completed = client.waitFor("mcpServer/oauthLogin/completed", (n) => n.name === name, { timeoutMs: 300_000 });
      const started: OauthLoginResponse = await client.login({ name });
      if (started.flow === "browser") {
        log(`opening the browser (${started.grant})`);
        await openBrowser(started.authorizationUrl); // always there in the browser flow
      } else {
        log(`logged in without a browser (${started.grant})`);
      }
      const done = await completed;
      if (done.success) return;
      if (done.errorKind === "loginSuperseded") continue; // another window started a newer one
      throw new Error(`login failed (${done.errorKind}): ${done.error}`);
    }
  } finally {
    restarted.dispose();
  }
}

if (server.authStatus !== "loggedIn") await logIn(serverName);

// 5. The headers of one MCP request: a token for every request (the daemon refreshes it when
//    needed), plus a proof of the daemon's key when the token is DPoP-bound.
async function authorization(name: string, method: string, url: string, body: string): Promise<Record<string, string>> {
  const token = await client.token({ name });
  if (token.tokenType !== "DPoP") return { authorization: `Bearer ${token.accessToken}` };
  const { proof, accessToken } = await client.dpopProof({ name, method, url, body });
  return { authorization: `DPoP ${accessToken}`, dpop: proof };
}

type McpReply = { status: number; sessionId: string | null; body: unknown };

async function post(url: string, headers: Record<string, string>, body: string, sessionId: string | null): Promise<Response> {
  return fetch(url, {
    method: "POST",
    headers: {
      "content-type": "application/json",
      accept: "application/json, text/event-stream",
      ...(sessionId ? { "mcp-session-id": sessionId, "mcp-protocol-version": "2025-06-18" } : {}),
      ...headers,
    },
    body,
    signal: AbortSignal.timeout(30_000),
  });
}

/** The JSON-RPC message of an MCP reply, whether it came as JSON or as an event stream. */
async function readReply(response: Response, id: number | undefined): Promise<unknown> {
  const text = await response.text();
  if (!text) return undefined;
  if (!(response.headers.get("content-type") ?? "").includes("text/event-stream")) return JSON.parse(text);
  const messages = text
    .split("\n")
    .filter((line) => line.startsWith("data:"))
    .map((line) => JSON.parse(line.slice(5)) as { id?: number });
  return messages.find((m) => m.id === id);
}

// 6. One MCP request. A 401 or 403 goes to the daemon with what the server said, and its
//    answer says what to do: retry with a new token or proof, or log in (a step-up for more
//    scopes, or a new login) and retry. One retry: a server that keeps refusing is an error.
type McpMessage = { id?: number; method: string; params?: unknown };

async function mcpRequest(name: string, message: McpMessage, sessionId: string | null): Promise<McpReply> {
  const body = JSON.stringify({ jsonrpc: "2.0", ...message });
  let headers = await authorization(name, "POST", mcpUrl, body);
  for (let attempt = 0; ; attempt++) {
    const response = await post(mcpUrl, headers, body, sessionId);
    if ((response.status !== 401 && response.status !== 403) || attempt > 0) {
      return { status: response.status, sessionId: response.headers.get("mcp-session-id"), body: await readReply(response, message.id) };
    }
    const answer: OauthChallengeResponse = await client.challenge({
      name,
      status: response.status,
      wwwAuthenticate: response.headers.get("www-authenticate") ?? "",
      dpopNonce: response.headers.get("dpop-nonce"),
      method: "POST",
      url: mcpUrl,
      body,
    });
    log(`the MCP server answered ${response.status}; the daemon says: ${answer.action}`);
    switch (answer.action) {
      case "token":
        headers = answer.tokenType === "DPoP" ? await authorization(name, "POST", mcpUrl, body) : { authorization: `Bearer ${answer.accessToken}` };
        break;
      case "dpopProof":
        headers = { authorization: `DPoP ${answer.accessToken}`, dpop: answer.proof };
        break;
      case "login": {
        const completed = client.waitFor("mcpServer/oauthLogin/completed", (n) => n.name === name, { timeoutMs: 300_000 });
        await openBrowser(answer.authorizationUrl);
        const done = await completed;
        if (!done.success) throw new Error(`step-up failed: ${done.error}`);
        headers = await authorization(name, "POST", mcpUrl, body);
        break;
      }
      case "reauthenticationRequired":
        log(`log in again: ${answer.reason}`);
        await logIn(name);
        headers = await authorization(name, "POST", mcpUrl, body);
        break;
    }
  }
}

// The MCP session: initialize, initialized, tools/list.
const initialized = await mcpRequest(
  serverName,
  { id: 1, method: "initialize", params: { protocolVersion: "2025-06-18", capabilities: {}, clientInfo: { name: "example-frontend", version: "1.0.0" } } },
  null,
);
if (initialized.status !== 200) throw new Error(`MCP initialize answered ${initialized.status}: ${JSON.stringify(initialized.body)}`);
await mcpRequest(serverName, { method: "notifications/initialized" }, initialized.sessionId);
const tools = await mcpRequest(serverName, { id: 2, method: "tools/list" }, initialized.sessionId);
const toolNames = ((tools.body as { result?: { tools?: { name: string }[] } })?.result?.tools ?? []).map((t) => t.name);
log(`tools: ${toolNames.join(", ")}`);

// The token, as the frontend would show it; a frontend that did not declare `dpop` and meets
// a DPoP-bound token gets `dpopRequired`, with the method to use in `data.useMethod`.
const { tokenType } = await client.token({ name: serverName });

// 7. Log out, revoking at the authorization server when it can.
const out = await client.logout({ name: serverName, revoke: true });
const afterLogout = await client.token({ name: serverName }).catch((e: unknown) => e);
const kindAfterLogout = afterLogout instanceof McpAppServerError ? afterLogout.kind : undefined;

// 8. On deactivate.
await client.dispose();

console.log(
  JSON.stringify({
    protocolVersion: init.protocolVersion,
    tokenType,
    mcpStatus: tools.status,
    tools: toolNames.length,
    removed: out.removed,
    afterLogout: kindAfterLogout,
  }),
);
