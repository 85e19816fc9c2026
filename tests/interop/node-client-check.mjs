#!/usr/bin/env node
// A plain-Node OAuth client that plays the daemon's part against the interop peers, proving
// they are configured right: discovery (401 -> PRM -> AS metadata), registration (DCR,
// preregistered confidential, or a Client ID Metadata Document), PKCE S256 + resource, a
// loopback callback, code exchange, refresh rotation and revocation (oidc-provider), and an
// authorized MCP request. The Rust interop tests replace this client with the daemon.
//
// Usage:
//   node node-client-check.mjs --server oidc --registration dcr|preregistered|cimd
//   node node-client-check.mjs --server oidc --registration deny   (INTERACTION_RESULT=deny)
//   node node-client-check.mjs --server sdk
//   node node-client-check.mjs --all
// Exit 0 when every selected mode passed.

import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import crypto from 'node:crypto';
import http from 'node:http';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs, promisify } from 'node:util';
import { listen, sendJson, sendText } from './lib/common.mjs';
import { startPeer } from './lib/peer-process.mjs';
import { browse } from './browser.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const runFile = promisify(execFile);
const CIMD_FAKE_ORIGIN = 'https://client.test';
const PREREGISTERED = { clientId: 'preregistered-confidential', clientSecret: 's3cret-for-tests' };

function log(message) {
  process.stderr.write(`node-client-check: ${message}\n`);
}

const b64url = (bytes) => Buffer.from(bytes).toString('base64url');

function decodeJwtPayload(token) {
  const parts = token.split('.');
  assert.equal(parts.length, 3, 'access token should be a JWT');
  return JSON.parse(Buffer.from(parts[1], 'base64url').toString('utf8'));
}

/** Parses the Bearer challenge's auth-params (quoted or token values). */
function parseBearerChallenge(header) {
  assert.ok(header, 'a 401 must carry WWW-Authenticate');
  const match = /bearer\s+(.*)$/i.exec(header);
  assert.ok(match, `no Bearer challenge in ${header}`);
  const params = {};
  const re = /([a-z_][a-z0-9_-]*)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s,]+))/gi;
  for (let m = re.exec(match[1]); m; m = re.exec(match[1])) {
    params[m[1].toLowerCase()] = m[2] !== undefined ? m[2].replace(/\\(.)/g, '$1') : m[3];
  }
  return params;
}

async function getJson(url) {
  const response = await fetch(url, { redirect: 'manual', headers: { accept: 'application/json' } });
  return { status: response.status, body: response.ok ? await response.json() : await response.text() };
}

/** Loopback callback listener on 127.0.0.1:<ephemeral>/callback/test; `next()` yields each query. */
async function startCallbackListener() {
  const queued = [];
  const waiting = [];
  const server = http.createServer((req, res) => {
    const url = new URL(req.url, 'http://127.0.0.1');
    if (req.method !== 'GET' || url.pathname !== '/callback/test') return sendText(res, 404, 'not found');
    const query = Object.fromEntries(url.searchParams);
    if (waiting.length > 0) waiting.shift()(query);
    else queued.push(query);
    const body = url.searchParams.has('code') ? 'Login complete. You can close this window.' : 'Login failed.';
    res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
    return res.end(`<!doctype html><title>login</title><p>${body}</p>`);
  });
  const port = await listen(server, 0);
  return {
    redirectUri: `http://127.0.0.1:${port}/callback/test`,
    /** The next callback's query; rejects after 10 s so a refusal that never redirects fails fast. */
    next: () => {
      if (queued.length > 0) return Promise.resolve(queued.shift());
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => {
          waiting.splice(waiting.indexOf(deliver), 1);
          reject(new Error('no request reached the loopback callback within 10 s'));
        }, 10_000);
        const deliver = (query) => {
          clearTimeout(timer);
          resolve(query);
        };
        waiting.push(deliver);
      });
    },
    close: () => new Promise((resolve) => server.close(resolve)),
  };
}

/**
 * Stand-in for `mcp-app-server serve-client-metadata`: serves the client metadata document
 * for https://client.test/<path> (the AS reaches it over loopback http via CIMD_HOST_ORIGIN),
 * with client_id rebuilt from the public origin so it matches the URL the AS was given.
 */
async function startDocumentHost() {
  const fetched = [];
  const server = http.createServer((req, res) => {
    const url = new URL(req.url, CIMD_FAKE_ORIGIN);
    const redirectUri = url.searchParams.get('redirect_uri');
    if (req.method !== 'GET' || !/^\/oauth\/[^/]+\/client\.json$/.test(url.pathname) || !redirectUri) {
      return sendText(res, 404, 'not found');
    }
    const clientId = `${CIMD_FAKE_ORIGIN}${req.url}`;
    fetched.push({ clientId, forwardedHost: req.headers['x-forwarded-host'] });
    return sendJson(res, 200, {
      client_id: clientId,
      client_name: 'interop CIMD client',
      redirect_uris: [redirectUri],
      grant_types: ['authorization_code', 'refresh_token'],
      response_types: ['code'],
      token_endpoint_auth_method: 'none',
      application_type: 'native',
    }, { 'cache-control': 'max-age=60' });
  });
  const port = await listen(server, 0);
  return { origin: `http://127.0.0.1:${port}`, fetched, close: () => new Promise((resolve) => server.close(resolve)) };
}

/** RFC 9728 + RFC 8414 discovery, as requirements.md rules 1-6 describe. */
async function discover(mcpUrl) {
  const probe = await fetch(mcpUrl, {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream' },
    body: JSON.stringify({ jsonrpc: '2.0', id: 0, method: 'ping' }),
  });
  await probe.body?.cancel();
  assert.equal(probe.status, 401, `unauthenticated MCP request to ${mcpUrl} should be 401`);
  const challenge = parseBearerChallenge(probe.headers.get('www-authenticate'));
  assert.ok(challenge.resource_metadata, 'challenge should name resource_metadata');

  const prm = await getJson(challenge.resource_metadata);
  assert.equal(prm.status, 200, `PRM ${challenge.resource_metadata} should answer 200`);
  const resourceUrl = new URL(prm.body.resource);
  const serverUrl = new URL(mcpUrl);
  assert.equal(resourceUrl.origin, serverUrl.origin, 'PRM resource must be on the server origin');
  assert.ok(serverUrl.pathname.startsWith(resourceUrl.pathname), 'PRM resource path must prefix the server path');
  assert.ok(prm.body.authorization_servers?.length > 0, 'PRM must list authorization servers');

  const issuer = prm.body.authorization_servers[0];
  const issuerUrl = new URL(issuer);
  const issuerPath = issuerUrl.pathname === '/' ? '' : issuerUrl.pathname;
  const candidates = issuerPath
    ? [`/.well-known/oauth-authorization-server${issuerPath}`, `/.well-known/openid-configuration${issuerPath}`,
      `${issuerPath}/.well-known/openid-configuration`]
    : ['/.well-known/oauth-authorization-server', '/.well-known/openid-configuration'];
  let metadata;
  for (const candidate of candidates) {
    const answer = await getJson(new URL(candidate, issuerUrl.origin));
    if (answer.status === 200) {
      metadata = answer.body;
      break;
    }
  }
  assert.ok(metadata, `no authorization server metadata for ${issuer}`);
  const normalise = (value) => value.replace(/\/$/, '');
  assert.equal(normalise(metadata.issuer), normalise(issuer), 'metadata issuer must equal the PRM issuer');
  assert.ok(metadata.code_challenge_methods_supported?.includes('S256'), 'AS must support S256');
  return { challenge, prm: prm.body, metadata, resource: prm.body.resource };
}

async function registerDynamically(metadata, redirectUri) {
  assert.ok(metadata.registration_endpoint, 'AS must offer a registration endpoint');
  const response = await fetch(metadata.registration_endpoint, {
    method: 'POST',
    redirect: 'manual',
    headers: { 'content-type': 'application/json', accept: 'application/json' },
    body: JSON.stringify({
      client_name: 'interop node check',
      redirect_uris: [redirectUri],
      grant_types: ['authorization_code', 'refresh_token'],
      response_types: ['code'],
      token_endpoint_auth_method: 'none',
      application_type: 'native',
    }),
  });
  const body = await response.json();
  assert.equal(response.status, 201, `DCR should answer 201: ${JSON.stringify(body)}`);
  assert.ok(body.client_id, 'DCR must return a client_id');
  return { clientId: body.client_id, clientSecret: undefined };
}

async function tokenRequest(metadata, client, form) {
  const headers = { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' };
  const params = new URLSearchParams(form);
  if (client.clientSecret) {
    // RFC 6749 2.3.1: form-urlencode both parts before Basic encoding.
    const user = encodeURIComponent(client.clientId);
    const pass = encodeURIComponent(client.clientSecret);
    headers.authorization = `Basic ${Buffer.from(`${user}:${pass}`).toString('base64')}`;
  } else {
    params.set('client_id', client.clientId);
  }
  const response = await fetch(metadata.token_endpoint, { method: 'POST', redirect: 'manual', headers, body: params });
  return { status: response.status, body: await response.json() };
}

async function revoke(metadata, client, token, hint) {
  const headers = { 'content-type': 'application/x-www-form-urlencoded' };
  const params = new URLSearchParams({ token, token_type_hint: hint });
  if (client.clientSecret) {
    headers.authorization = `Basic ${Buffer.from(`${encodeURIComponent(client.clientId)}:${encodeURIComponent(client.clientSecret)}`).toString('base64')}`;
  } else {
    params.set('client_id', client.clientId);
  }
  const response = await fetch(metadata.revocation_endpoint, { method: 'POST', headers, body: params });
  await response.body?.cancel();
  return response.status;
}

/** One Streamable HTTP JSON-RPC call; accepts a JSON or an SSE answer. */
async function mcpCall(mcpUrl, accessToken, session, message) {
  const headers = {
    'content-type': 'application/json',
    accept: 'application/json, text/event-stream',
    'mcp-protocol-version': '2025-06-18',
  };
  if (accessToken) headers.authorization = `Bearer ${accessToken}`;
  if (session.id) headers['mcp-session-id'] = session.id;
  const response = await fetch(mcpUrl, { method: 'POST', headers, body: JSON.stringify(message) });
  session.id = response.headers.get('mcp-session-id') ?? session.id;
  const text = await response.text();
  if (!('id' in message) || response.status !== 200) return { status: response.status, text, headers: response.headers };
  let reply;
  if ((response.headers.get('content-type') ?? '').includes('text/event-stream')) {
    for (const line of text.split(/\r?\n/)) {
      if (!line.startsWith('data:')) continue;
      const data = JSON.parse(line.slice(5).trim());
      if (data.id === message.id) reply = data;
    }
  } else {
    reply = JSON.parse(text);
  }
  return { status: response.status, reply };
}

async function mcpSession(mcpUrl, accessToken) {
  const session = {};
  const init = await mcpCall(mcpUrl, accessToken, session, {
    jsonrpc: '2.0',
    id: 1,
    method: 'initialize',
    params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'interop-node-check', version: '1' } },
  });
  assert.equal(init.status, 200, `authorized initialize should be 200, got ${init.status} ${init.text ?? ''}`);
  assert.ok(init.reply?.result?.serverInfo, `initialize should return serverInfo: ${JSON.stringify(init.reply)}`);
  const initialized = await mcpCall(mcpUrl, accessToken, session, { jsonrpc: '2.0', method: 'notifications/initialized' });
  assert.equal(initialized.status, 202, 'initialized notification should be accepted with 202');
  const list = await mcpCall(mcpUrl, accessToken, session, { jsonrpc: '2.0', id: 2, method: 'tools/list', params: {} });
  assert.equal(list.status, 200);
  const tools = list.reply?.result?.tools;
  assert.ok(Array.isArray(tools) && tools.length > 0, `tools/list should list tools: ${JSON.stringify(list.reply)}`);
  return { session, tools };
}

function authorizationRequest(metadata, fields) {
  const verifier = b64url(crypto.randomBytes(32));
  const state = b64url(crypto.randomBytes(16));
  const url = new URL(metadata.authorization_endpoint);
  const params = {
    response_type: 'code',
    state,
    code_challenge: b64url(crypto.createHash('sha256').update(verifier).digest()),
    code_challenge_method: 'S256',
    ...fields,
  };
  for (const [key, value] of Object.entries(params)) {
    if (value !== undefined) url.searchParams.set(key, value);
  }
  return { url: url.href, verifier, state };
}

/**
 * The peers must refuse what a broken daemon would do, or the interop tests prove nothing:
 * each case here is a mistake the daemon could make, and must fail at the peer.
 */
async function checkRefusals(serverKind, registration, { metadata, client, callback, resource, scope }) {
  const base = { client_id: client.clientId, redirect_uri: callback.redirectUri, scope, resource };
  if (serverKind === 'sdk') {
    const wrongResource = resource.replace('//localhost:', '//127.0.0.1:');
    const request = authorizationRequest(metadata, { ...base, resource: wrongResource });
    const browsed = await browse(request.url);
    assert.equal(browsed.status, 200, 'demo AS approves at once');
    const query = await callback.next();
    const exchanged = await tokenRequest(metadata, client, {
      grant_type: 'authorization_code', code: query.code, redirect_uri: callback.redirectUri,
      code_verifier: request.verifier, resource: wrongResource,
    });
    assert.notEqual(exchanged.status, 200, '--oauth-strict must refuse a resource other than http://localhost:P/mcp');
    return;
  }

  // Without PKCE: the error comes back to the (valid) redirect URI.
  const noPkce = authorizationRequest(metadata, { ...base, code_challenge: undefined, code_challenge_method: undefined });
  const noPkceUrl = new URL(noPkce.url);
  noPkceUrl.searchParams.delete('code_challenge');
  noPkceUrl.searchParams.delete('code_challenge_method');
  await browse(noPkceUrl.href);
  const noPkceQuery = await callback.next();
  assert.equal(noPkceQuery.error, 'invalid_request', 'PKCE must be required');
  assert.equal(noPkceQuery.state, noPkce.state);

  const otherResource = authorizationRequest(metadata, { ...base, resource: 'http://127.0.0.1:9/elsewhere' });
  await browse(otherResource.url);
  assert.equal((await callback.next()).error, 'invalid_target', 'unknown resource must be invalid_target');

  // localhost is not 127.0.0.1: no redirect at all, an error page instead.
  const localhost = authorizationRequest(metadata, { ...base, redirect_uri: callback.redirectUri.replace('127.0.0.1', 'localhost') });
  const localhostBrowsed = await browse(localhost.url);
  assert.ok(localhostBrowsed.error && localhostBrowsed.status === 400, 'a localhost redirect must not match a 127.0.0.1 registration');

  if (registration === 'preregistered') {
    const elsewhere = authorizationRequest(metadata, { ...base, redirect_uri: callback.redirectUri.replace('/callback/test', '/other') });
    assert.equal((await browse(elsewhere.url)).status, 400, 'preregistered redirects must stay under /callback/');
    const wrongSecret = await tokenRequest(metadata, { ...client, clientSecret: 'wrong' }, {
      grant_type: 'authorization_code', code: 'bogus', redirect_uri: callback.redirectUri, code_verifier: 'x'.repeat(43),
    });
    assert.equal(wrongSecret.body.error, 'invalid_client', 'a wrong client secret must be invalid_client');
  }
  if (registration === 'cimd') {
    const missing = `${CIMD_FAKE_ORIGIN}/oauth/test/other.json`;
    const browsed = await browse(authorizationRequest(metadata, { ...base, client_id: missing }).url);
    assert.equal(browsed.status, 400, 'a CIMD URL whose document is missing must be refused');
    const unmapped = 'https://unmapped.test/oauth/test/client.json';
    assert.equal((await browse(authorizationRequest(metadata, { ...base, client_id: unmapped }).url)).status, 400,
      'only the mapped fake host is fetched over loopback');
  }
}

/** Runs the browser CLI exactly as the Rust tests will. */
async function runBrowser(authorizationUrl) {
  try {
    const { stdout } = await runFile(process.execPath, [path.join(here, 'browser.mjs'), authorizationUrl], { timeout: 30_000 });
    return JSON.parse(stdout.trim());
  } catch (error) {
    throw new Error(`browser.mjs failed: ${error.stdout ?? ''}${error.stderr ?? ''}${error.message}`);
  }
}

async function checkMode(serverKind, registration) {
  const label = serverKind === 'sdk' ? 'sdk' : `oidc/${registration}`;
  const cleanups = [];
  try {
    const callback = await startCallbackListener();
    cleanups.push(callback.close);

    let documentHost;
    const env = {};
    if (registration === 'cimd') {
      documentHost = await startDocumentHost();
      cleanups.push(documentHost.close);
      env.CIMD_HOST_ORIGIN = documentHost.origin;
    }
    const script = path.join(here, serverKind === 'sdk' ? 'sdk-server.mjs' : 'oidc-server.mjs');
    const peer = await startPeer(script, { env, label });
    cleanups.unshift(async () => {
      const code = await peer.stop();
      assert.equal(code, 0, `${label}: peer should exit 0 on SIGTERM`);
    });
    log(`${label}: peer ready ${JSON.stringify(peer.ready)}`);
    const { mcpUrl } = peer.ready;

    const { metadata, prm, resource } = await discover(mcpUrl);
    assert.equal(resource, mcpUrl, 'PRM resource should be the MCP URL');
    assert.equal(prm.authorization_servers[0], peer.ready.issuer, 'PRM should point at the peer issuer');

    let client;
    if (registration === 'dcr') {
      client = await registerDynamically(metadata, callback.redirectUri);
    } else if (registration === 'preregistered') {
      client = { ...PREREGISTERED };
    } else {
      assert.equal(metadata.client_id_metadata_document_supported, true, 'AS should advertise CIMD');
      assert.ok(metadata.token_endpoint_auth_methods_supported.includes('none'));
      const query = new URLSearchParams({ redirect_uri: callback.redirectUri });
      client = { clientId: `${CIMD_FAKE_ORIGIN}/oauth/test/client.json?${query}`, clientSecret: undefined };
    }

    const scopes = [...(prm.scopes_supported ?? [])];
    if (metadata.scopes_supported?.includes('offline_access')) scopes.push('offline_access');
    const scope = scopes.join(' ');
    await checkRefusals(serverKind, registration, { metadata, client, callback, resource, scope });

    const { url: authorizationUrl, verifier, state } = authorizationRequest(metadata, {
      client_id: client.clientId,
      redirect_uri: callback.redirectUri,
      scope,
      resource,
    });
    const browsed = await runBrowser(authorizationUrl);
    assert.equal(browsed.status, 200, `browser should reach the callback: ${JSON.stringify(browsed)}`);
    assert.ok(browsed.finalUrl.startsWith(`${callback.redirectUri}?`), 'browser should stop at our redirect URI');
    const query = await callback.next();
    assert.equal(query.state, state, 'callback state must round-trip');
    assert.ok(query.code, `callback should carry a code: ${JSON.stringify({ ...query, code: undefined })}`);
    if (metadata.authorization_response_iss_parameter_supported) {
      assert.equal(query.iss, metadata.issuer, 'RFC 9207 iss on the callback must be the issuer');
    }
    if (documentHost) {
      assert.ok(documentHost.fetched.some((f) => f.clientId === client.clientId), 'AS should fetch the CIMD document');
      assert.equal(documentHost.fetched[0].forwardedHost, 'client.test', 'mapped fetch names the public host');
    }

    const exchanged = await tokenRequest(metadata, client, {
      grant_type: 'authorization_code',
      code: query.code,
      redirect_uri: callback.redirectUri,
      code_verifier: verifier,
      resource,
    });
    assert.equal(exchanged.status, 200, `code exchange should succeed: ${JSON.stringify(exchanged.body.error ?? exchanged.body)}`);
    assert.equal(exchanged.body.token_type.toLowerCase(), 'bearer');
    const accessToken = exchanged.body.access_token;
    assert.ok(accessToken);

    const { tools } = await mcpSession(mcpUrl, accessToken);
    log(`${label}: authorized MCP session lists ${tools.map((t) => t.name).join(', ')}`);

    if (serverKind === 'sdk') {
      assert.ok(!exchanged.body.refresh_token, 'the SDK demo issues no refresh tokens');
      return label;
    }

    const claims = decodeJwtPayload(accessToken);
    assert.equal(claims.aud, resource, 'access token aud must be the MCP URL');
    assert.equal(claims.iss, peer.ready.issuer);
    assert.equal(claims.client_id, client.clientId);
    assert.deepEqual(String(claims.scope).split(' ').sort(), ['mcp:read', 'mcp:write']);

    const whoami = await mcpCall(mcpUrl, accessToken, {}, {
      jsonrpc: '2.0', id: 3, method: 'tools/call', params: { name: 'whoami', arguments: {} },
    });
    assert.equal(JSON.parse(whoami.reply.result.content[0].text).client_id, client.clientId);
    const forged = await mcpCall(mcpUrl, `${accessToken.slice(0, -4)}AAAA`, {}, { jsonrpc: '2.0', id: 4, method: 'ping' });
    assert.equal(forged.status, 401, 'a token with a bad signature must be refused');
    assert.match(forged.headers.get('www-authenticate'), /error="invalid_token"/);

    const refreshToken0 = exchanged.body.refresh_token;
    assert.ok(refreshToken0, 'oidc-provider should issue a refresh token');
    const refreshed = await tokenRequest(metadata, client, { grant_type: 'refresh_token', refresh_token: refreshToken0, resource });
    assert.equal(refreshed.status, 200, `refresh should succeed: ${JSON.stringify(refreshed.body)}`);
    assert.equal(decodeJwtPayload(refreshed.body.access_token).aud, resource, 'refreshed token keeps the audience');
    const refreshToken1 = refreshed.body.refresh_token ?? refreshToken0;
    const isPublic = !client.clientSecret;
    if (isPublic) assert.notEqual(refreshToken1, refreshToken0, 'public clients get a rotated refresh token');
    await mcpSession(mcpUrl, refreshed.body.access_token);

    assert.equal(await revoke(metadata, client, refreshToken1, 'refresh_token'), 200, 'revocation should answer 200');
    const afterRevoke = await tokenRequest(metadata, client, { grant_type: 'refresh_token', refresh_token: refreshToken1, resource });
    assert.equal(afterRevoke.status, 400);
    assert.equal(afterRevoke.body.error, 'invalid_grant', 'a revoked refresh token must be invalid_grant');
    if (isPublic) {
      const reused = await tokenRequest(metadata, client, { grant_type: 'refresh_token', refresh_token: refreshToken0, resource });
      assert.equal(reused.body.error, 'invalid_grant', 'a rotated-away refresh token must be invalid_grant');
    }
    return label;
  } finally {
    for (const cleanup of cleanups) await cleanup();
  }
}

/** INTERACTION_RESULT=deny: the user refuses; the error must come back to the callback. */
async function checkDenied() {
  const callback = await startCallbackListener();
  const peer = await startPeer(path.join(here, 'oidc-server.mjs'), { env: { INTERACTION_RESULT: 'deny' }, label: 'oidc/deny' });
  try {
    const { metadata, resource } = await discover(peer.ready.mcpUrl);
    const client = await registerDynamically(metadata, callback.redirectUri);
    const request = authorizationRequest(metadata, {
      client_id: client.clientId, redirect_uri: callback.redirectUri, scope: 'mcp:read', resource,
    });
    const browsed = await runBrowser(request.url);
    assert.equal(browsed.status, 200, 'the denial still lands on the callback');
    const query = await callback.next();
    assert.equal(query.error, 'access_denied');
    assert.equal(query.state, request.state);
    assert.equal(query.iss, peer.ready.issuer);
    assert.equal(query.code, undefined);
  } finally {
    assert.equal(await peer.stop(), 0, 'oidc/deny: peer should exit 0 on SIGTERM');
    await callback.close();
  }
}

const { values: args } = parseArgs({
  options: {
    server: { type: 'string' },
    registration: { type: 'string' },
    all: { type: 'boolean', default: false },
  },
});

let modes;
if (args.all) {
  modes = [['oidc', 'dcr'], ['oidc', 'preregistered'], ['oidc', 'cimd'], ['oidc', 'deny'], ['sdk', 'dcr']];
} else if (args.server === 'sdk') {
  if (args.registration && args.registration !== 'dcr') throw new Error('the SDK demo supports only --registration dcr');
  modes = [['sdk', 'dcr']];
} else if (args.server === 'oidc' && ['dcr', 'preregistered', 'cimd', 'deny'].includes(args.registration)) {
  modes = [['oidc', args.registration]];
} else {
  process.stderr.write('usage: node node-client-check.mjs --server oidc --registration dcr|preregistered|cimd|deny | --server sdk | --all\n');
  process.exit(2);
}

let passed = 0;
let failed = 0;
for (const [serverKind, registration] of modes) {
  const label = serverKind === 'sdk' ? 'sdk' : `oidc/${registration}`;
  try {
    if (registration === 'deny') await checkDenied();
    else await checkMode(serverKind, registration);
    passed += 1;
    process.stdout.write(`ok ${label}\n`);
  } catch (error) {
    failed += 1;
    process.stdout.write(`FAILED ${label}: ${error.stack}\n`);
  }
}
process.stdout.write(`${passed} passed, ${failed} failed\n`);
process.exitCode = failed === 0 ? 0 : 1;
