#!/usr/bin/env node
// The MCP TypeScript SDK's side of the cold-login rows of docs/benchmarks.md: a client of the
// SDK connects to an MCP server it knows nothing about and is sent to the browser; the time
// is from `connect` to the SDK handing over the authorization URL (Node's start-up is not
// counted). Further logins run in the same process with one provider that keeps the
// registered client, as an application would: the first is cold, the third is the warm
// figure. `app-server/benches/daemon/cold.rs` runs it against the same test kit as the daemon.
//
// Usage: node sdk-login-timing.mjs <mcp-url> <dcr|preregistered|cimd> <logins> [client id | document URL]
// Prints one JSON line: {"times_ms": [first, second, ...]}.

import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';

const [serverUrl, mode, count, extra] = process.argv.slice(2);
const logins = Number(count);
if (!serverUrl || !['dcr', 'preregistered', 'cimd'].includes(mode) || !(logins >= 1 && logins <= 10)) {
  process.stderr.write('usage: sdk-login-timing.mjs <mcp-url> <dcr|preregistered|cimd> <logins 1-10> [client id | document URL]\n');
  process.exit(2);
}

const redirectUrl = 'http://127.0.0.1:8976/callback';
let client = mode === 'preregistered' ? { client_id: extra ?? 'pre-pub' } : undefined;
let handedOver;

const provider = {
  get redirectUrl() {
    return redirectUrl;
  },
  clientMetadataUrl: mode === 'cimd' ? extra : undefined,
  get clientMetadata() {
    return {
      client_name: 'sdk-login-timing',
      redirect_uris: [redirectUrl],
      grant_types: ['authorization_code', 'refresh_token'],
      response_types: ['code'],
      token_endpoint_auth_method: 'none',
    };
  },
  clientInformation: () => client,
  saveClientInformation: (info) => {
    client = info;
  },
  tokens: () => undefined,
  saveTokens: () => {},
  saveCodeVerifier: () => {},
  codeVerifier: () => 'unused',
  redirectToAuthorization: (url) => {
    handedOver?.(url);
  },
};

async function login() {
  const got = new Promise((resolve) => {
    handedOver = resolve;
  });
  const start = performance.now();
  const transport = new StreamableHTTPClientTransport(new URL(serverUrl), { authProvider: provider });
  const mcp = new Client({ name: 'sdk-login-timing', version: '0' });
  const connecting = mcp.connect(transport).catch(() => {});
  const url = await got;
  const ms = performance.now() - start;
  await connecting;
  await transport.close().catch(() => {});
  if (!String(url).includes('client_id=')) throw new Error(`no client_id in ${url}`);
  return ms;
}

const times = [];
for (let i = 0; i < logins; i += 1) times.push(await login());
process.stdout.write(`${JSON.stringify({ times_ms: times })}\n`);
