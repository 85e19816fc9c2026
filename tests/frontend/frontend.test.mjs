// A real frontend in CI: packs bindings/, installs the tarball into an empty project and,
// through that installed package only, drives the real daemon binary against third-party
// OAuth and MCP servers (tests/interop). Every message both ways is validated against
// schema/ as it passes; a message that does not validate fails the test it belongs to.
//
// Run: node --test --test-concurrency=1 tests/frontend/frontend.test.mjs
// Needs target/debug/mcp-app-server (or MCP_APP_SERVER_BIN) and `npm ci` in this folder.

import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { PassThrough } from 'node:stream';
import { after, afterEach, before, describe, test } from 'node:test';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import { StreamMessageReader, StreamMessageWriter, createMessageConnection } from 'vscode-jsonrpc/node.js';

import { packAndInstall } from './lib/package.mjs';
import { browse, installInteropPeers, startPeer } from './lib/peers.mjs';
import { ConversationValidator, loadSchemas } from './lib/validator.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const root = resolve(here, '..', '..');
const bin = process.env.MCP_APP_SERVER_BIN ?? join(root, 'target', 'debug', 'mcp-app-server');
// The Rust test kit's servers (tests/src/bin/testkit_servers.rs), for a server that binds tokens with DPoP.
const testkitBin = process.env.MCP_TESTKIT_BIN ?? join(root, 'target', 'debug', 'testkit-servers');
const LOGIN_TIMEOUT_MS = 60_000;

let work;
let pkg; // the installed package, imported from the temp project
let installed;
let schemas;
let sdk;
let oidc;
let typeCheck; // tsc --strict of a frontend's TypeScript, run while the daemon tests run
let exampleBuild; // tsc of the example frontend, likewise
const conversations = [];
const homes = [];
// Every spawned client: disposed at the end even when a test failed before it did.
const clients = [];

before(async () => {
  assert.ok(existsSync(bin), `no daemon binary at ${bin}: run \`cargo build -p mcp-app-server\` first`);
  work = mkdtempSync(join(tmpdir(), 'mcp-frontend-'));
  installInteropPeers(root);
  // The peers boot while the package is packed and installed.
  const peers = Promise.all([
    startPeer(root, 'sdk-server.mjs'),
    // Opaque access tokens: the MCP resource asks the issuer about each one, so a revoked
    // token is refused at once.
    startPeer(root, 'oidc-server.mjs', { ACCESS_TOKEN_FORMAT: 'opaque' }),
  ]);
  peers.catch(() => {});
  installed = packAndInstall(root, work, [join(here, 'node_modules', 'vscode-jsonrpc')]);
  typeCheck = strictTypeCheck(installed.app);
  exampleBuild = buildExample(installed.app);
  pkg = await import(pathToFileURL(installed.entry).href);
  schemas = loadSchemas(join(root, 'schema'));
  [sdk, oidc] = await peers;
});

after(async () => {
  await Promise.all(clients.map((c) => c.dispose().catch(() => {})));
  const codes = await Promise.all([sdk?.stop(), oidc?.stop()]);
  for (const home of homes) rmSync(home, { recursive: true, force: true });
  if (work) rmSync(work, { recursive: true, force: true });
  assert.deepEqual(codes, [0, 0], 'the peers exit 0 on SIGTERM');
});

// Every conversation of a test must have validated cleanly.
afterEach(() => {
  const problems = conversations.splice(0).flatMap((c) => c.problems);
  assert.deepEqual(problems, [], 'messages that do not match schema/');
});

function home(servers) {
  const dir = mkdtempSync(join(tmpdir(), 'mcp-frontend-home-'));
  homes.push(dir);
  writeFileSync(join(dir, 'config.toml'), `mcp_oauth_credentials_store = "file"\n${servers}`);
  return dir;
}

const server = (name, url) => `[mcp_servers.${name}]\nurl = "${url}"\n`;

/** The daemon through the installed package, with every message validated. */
function daemon(servers, options = {}) {
  const validator = new ConversationValidator(schemas);
  conversations.push(validator);
  let log = '';
  const client = pkg.spawnAppServer({
    bin,
    home: home(servers),
    env: { RUST_LOG: 'info' },
    stderr: (text) => {
      if (log.length < 64 * 1024) log += text;
    },
    trace: (direction, message) => validator.check(direction, message),
    ...options,
  });
  clients.push(client);
  return { client, validator, log: () => log };
}

async function initialize(client) {
  const init = await client.initialize({ clientInfo: { name: 'frontend-test', title: 'Frontend test', version: '1.0.0' } });
  assert.equal(init.serverInfo.name, 'mcp-app-server');
  assert.deepEqual(init.methods, [...pkg.REQUEST_METHODS], 'the daemon answers every method the client has');
  assert.deepEqual(init.notifications, [...pkg.NOTIFICATION_METHODS]);
  await client.notify('initialized');
  return init;
}

/** login -> browser -> loginCompleted, through the package's typed calls. */
async function login(client, name) {
  const completed = client.waitFor('mcpServer/oauthLogin/completed', (n) => n.name === name, { timeoutMs: LOGIN_TIMEOUT_MS });
  const { authorizationUrl, redirectUri } = await client.login({ name });
  assert.match(redirectUri, /^http:\/\/127\.0\.0\.1:\d+\/callback\//);
  const page = await browse(authorizationUrl);
  assert.equal(page.status, 200, `the daemon's callback page: ${JSON.stringify(page)}`);
  const done = await completed;
  assert.equal(done.success, true, `login failed: ${JSON.stringify(done)}`);
  return done;
}

async function statusOf(client, name) {
  const { data } = await client.listMcpServerStatus();
  const status = data.find((s) => s.name === name);
  assert.ok(status, `${name} is listed`);
  return status;
}

/** One JSON-RPC message to a Streamable HTTP MCP endpoint; SSE or JSON answers. */
async function mcpPost(url, token, message, sessionId) {
  const headers = {
    'content-type': 'application/json',
    accept: 'application/json, text/event-stream',
    'mcp-protocol-version': '2025-06-18',
  };
  if (token) headers.authorization = `Bearer ${token}`;
  if (sessionId) headers['mcp-session-id'] = sessionId;
  const response = await fetch(url, { method: 'POST', headers, body: JSON.stringify(message), signal: AbortSignal.timeout(10_000) });
  const text = await response.text();
  let body;
  if ((response.headers.get('content-type') ?? '').includes('text/event-stream')) {
    const data = text.split('\n').filter((l) => l.startsWith('data:')).map((l) => JSON.parse(l.slice(5)));
    body = data.find((m) => m.id === message.id);
  } else if (text) {
    body = JSON.parse(text);
  }
  return { status: response.status, sessionId: response.headers.get('mcp-session-id'), body };
}

const mcpInitialize = {
  jsonrpc: '2.0',
  id: 1,
  method: 'initialize',
  params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'frontend-test', version: '1' } },
};

async function whoami(mcpUrl, token) {
  const reply = await mcpPost(mcpUrl, token, { jsonrpc: '2.0', id: 2, method: 'tools/call', params: { name: 'whoami', arguments: {} } });
  if (reply.status !== 200) return { status: reply.status };
  return { status: 200, me: JSON.parse(reply.body.result.content[0].text) };
}

/** Copies the consumers into the installed project and starts `tsc --strict` on them. */
/** Runs the compiled example frontend against a daemon home with `servers`; its summary line. */
async function runExample(servers, name) {
  const example = join(installed.app, 'example');
  const dir = home(servers);
  const { stdout, stderr } = await promisify(execFile)(process.execPath, [join(example, 'out', 'example-frontend.js'), bin, name], {
    cwd: example,
    env: { ...process.env, MCP_APP_SERVER_HOME: dir, BROWSER: `${process.execPath} ${join(root, 'tests', 'interop', 'browser.mjs')}`, RUST_LOG: 'warn' },
    timeout: 120_000,
  }).catch((e) => assert.fail(`the example failed:\n${e.stdout}\n${e.stderr}`));
  return { summary: JSON.parse(stdout.trim().split('\n').at(-1)), stderr };
}

/** Compiles the example frontend with tsc --strict against the installed package. */
function buildExample(app) {
  const example = join(app, 'example');
  mkdirSync(example, { recursive: true });
  copyFileSync(join(here, 'example', 'example-frontend.ts'), join(example, 'example-frontend.ts'));
  writeFileSync(join(example, 'tsconfig.json'), JSON.stringify({
    compilerOptions: {
      target: 'ES2022',
      lib: ['ES2022', 'DOM'],
      module: 'NodeNext',
      moduleResolution: 'NodeNext',
      types: ['node'],
      typeRoots: [join(here, 'node_modules', '@types')],
      strict: true,
      noUncheckedIndexedAccess: true,
      outDir: 'out',
    },
    files: ['example-frontend.ts'],
  }));
  const tsc = join(here, 'node_modules', 'typescript', 'bin', 'tsc');
  return promisify(execFile)(process.execPath, [tsc, '-p', 'tsconfig.json'], { cwd: example })
    .then(() => ({ ok: true }), (error) => ({ ok: false, out: `${error.stdout}${error.stderr}` }));
}

function strictTypeCheck(app) {
  for (const file of ['consumer.ts', 'consumer.cts']) copyFileSync(join(here, 'consumer', file), join(app, file));
  writeFileSync(join(app, 'tsconfig.json'), JSON.stringify({
    compilerOptions: {
      target: 'ES2022',
      lib: ['ES2022'],
      module: 'NodeNext',
      moduleResolution: 'NodeNext',
      types: ['node'],
      typeRoots: [join(here, 'node_modules', '@types')],
      strict: true,
      noEmit: true,
      skipLibCheck: false,
    },
    files: ['consumer.ts', 'consumer.cts'],
  }));
  const tsc = join(here, 'node_modules', 'typescript', 'bin', 'tsc');
  return promisify(execFile)(process.execPath, [tsc, '-p', 'tsconfig.json'], { cwd: app })
    .then(() => ({ ok: true }), (error) => ({ ok: false, out: `${error.stdout}${error.stderr}` }));
}

test('the packed package installs into an empty project with nothing but itself', () => {
  assert.ok(installed.files.includes('dist/index.js'), 'compiled JavaScript is shipped');
  assert.ok(installed.files.includes('dist/index.d.ts'), 'declarations are shipped');
  assert.ok(installed.files.includes('dist/cjs/index.js') && installed.files.includes('dist/cjs/index.d.ts'), 'and a CommonJS build');
  assert.ok(installed.files.includes('dist/generated/client.js'));
  assert.ok(installed.files.includes('README.md'));
  assert.ok(!installed.files.some((f) => f.startsWith('src/') || f.startsWith('node_modules/')), installed.files.join(' '));
  // Nothing came along with it: no runtime dependencies.
  assert.deepEqual(installed.installed.filter((n) => !n.startsWith('.')).sort(), ['@mcp-app-server', 'vscode-jsonrpc']);
  assert.equal(typeof pkg.McpAppServerClient.prototype.login, 'function');
  assert.equal(typeof pkg.McpAppServerClient.prototype.onLoginCompleted, 'function');

});

describe('over the daemon binary', () => {
  test('from CommonJS: require() of the installed package works too', async () => {
    copyFileSync(join(here, 'consumer', 'require.cjs'), join(installed.app, 'require.cjs'));
    const validator = new ConversationValidator(schemas);
    conversations.push(validator);
    const { stdout } = await promisify(execFile)(process.execPath, ['require.cjs', bin, home(server('cjs', 'http://127.0.0.1:9/mcp'))], {
      cwd: installed.app,
    });
    const lines = stdout.trim().split('\n').map((line) => JSON.parse(line));
    for (const { direction, message } of lines.filter((l) => l.direction)) validator.check(direction, message);
    assert.deepEqual(lines.at(-1).summary, { daemon: 'mcp-app-server', servers: ['cjs'], kind: 'serverNotFound', typed: true, exitCode: 0 });
    assert.equal(validator.seen.send, 3);
    assert.equal(validator.seen.receive, 3);
  });

  for (const framing of ['content-length', 'newline']) {
    test(`initialize, list, and typed errors with data.kind (${framing} framing)`, async () => {
      const { client, validator } = daemon(server('local', 'http://127.0.0.1:9/mcp'), { framing });
      await initialize(client);
      const { data } = await client.listMcpServerStatus({ limit: 10 });
      assert.deepEqual(data.map((s) => [s.name, s.transport, s.authStatus]), [['local', 'streamableHttp', 'notLoggedIn']]);

      const unknown = await client.login({ name: 'no-such-server' }).catch((e) => e);
      assert.ok(unknown instanceof pkg.McpAppServerError, String(unknown));
      assert.equal(unknown.kind, 'serverNotFound');
      assert.equal(unknown.code, pkg.ERROR_KIND_CODES.serverNotFound);
      assert.equal(unknown.method, 'mcpServer/oauth/login');
      assert.match(unknown.message, /no-such-server/);
      const notLoggedIn = await client.token({ name: 'local' }).catch((e) => e);
      assert.equal(notLoggedIn.kind, 'notLoggedIn');
      // A standard JSON-RPC error has a code and no kind. The request breaks the schema on purpose.
      validator.expectInvalidRequest();
      const invalid = await client.request('mcpServer/oauth/token', { name: 'local', minValiditySecs: -1 }).catch((e) => e);
      assert.ok(invalid instanceof pkg.McpAppServerError);
      assert.equal(invalid.code, -32602);
      assert.equal(invalid.kind, undefined);
      assert.match(invalid.message, /minValiditySecs/);
      assert.equal(validator.expected.length, 1, 'the schema refuses what the daemon refuses');

      await client.dispose();
      assert.equal(client.process.exitCode, 0, 'closing stdin lets the daemon exit cleanly');
      const late = await client.listMcpServerStatus().catch((e) => e);
      assert.ok(late instanceof pkg.ClientError);
      assert.equal(late.reason, 'disposed');
      assert.ok(validator.seen.send >= 5 && validator.seen.receive >= 5, JSON.stringify(validator.seen));
    });
  }

  test('the example frontend of docs/frontends.md, compiled from TypeScript, runs whole against the SDK demo server', async () => {
    const { mcpUrl } = sdk.ready;
    const source = readFileSync(join(here, 'example', 'example-frontend.ts'), 'utf8');
    const docs = readFileSync(join(root, 'docs', 'frontends.md'), 'utf8');
    assert.ok(docs.includes(`\`\`\`ts\n${source}\`\`\``), 'docs/frontends.md shows tests/frontend/example/example-frontend.ts as it is');
    const built = await exampleBuild;
    assert.ok(built.ok, `the example does not type-check:\n${built.out}`);
    const { summary, stderr } = await runExample(server('sdk', mcpUrl), 'sdk');
    assert.deepEqual(summary, {
      protocolVersion: pkg.PROTOCOL_VERSION,
      tokenType: 'Bearer', // the demo's authorization server does not offer DPoP
      mcpStatus: 200,
      tools: summary.tools,
      removed: true,
      afterLogout: 'notLoggedIn',
    }, stderr);
    assert.ok(summary.tools > 0, stderr);
    assert.match(stderr, /example: opening the browser \(authorizationCode\)/);
  });

  test('the example frontend sends DPoP proofs to a server that binds its tokens (the Rust test kit in DPoP mode)', async () => {
    assert.ok(existsSync(testkitBin), `no test kit binary at ${testkitBin}: run \`cargo build -p mcp-app-server-testkit --bins\` first`);
    const kit = spawn(testkitBin, [], { env: { ...process.env, MCP_TESTKIT_DPOP: '1' }, stdio: ['ignore', 'pipe', 'inherit'] });
    try {
      const [line] = await Promise.race([
        once(createInterface({ input: kit.stdout }), 'line'),
        once(kit, 'exit').then(([code]) => assert.fail(`the test kit exited (${code}) before it was ready`)),
      ]);
      const { mcpUrl } = JSON.parse(line);
      const built = await exampleBuild;
      assert.ok(built.ok, `the example does not type-check:\n${built.out}`);
      const { summary, stderr } = await runExample(server('kit', mcpUrl), 'kit');
      // The example declared capabilities.dpop: its login bound the token, and every MCP
      // request carried a proof the kit verified (htm, htu, ath, content_digest, fresh jti).
      assert.equal(summary.tokenType, 'DPoP', stderr);
      assert.equal(summary.mcpStatus, 200, stderr);
      assert.equal(summary.removed, true, stderr);
      assert.equal(summary.afterLogout, 'notLoggedIn', stderr);
    } finally {
      kit.kill('SIGTERM');
    }
  });

  test('login against the MCP TypeScript SDK demo server, then a real MCP session with the token', async () => {
    const { mcpUrl, issuer } = sdk.ready;
    const { client } = daemon(server('sdk', mcpUrl));
    await initialize(client);
    const changes = [];
    client.onAuthStatusChanged((n) => changes.push(n));
    assert.equal((await mcpPost(mcpUrl, null, mcpInitialize)).status, 401, 'the server wants a token');

    await login(client, 'sdk');
    const status = await statusOf(client, 'sdk');
    assert.equal(status.authStatus, 'loggedIn');
    assert.equal(status.registration, 'dcr');
    assert.equal(status.issuer, issuer);
    assert.deepEqual(changes.at(-1), { name: 'sdk', authStatus: 'loggedIn' });

    const token = await client.token({ name: 'sdk' });
    assert.equal(token.tokenType, 'Bearer');
    const init = await mcpPost(mcpUrl, token.accessToken, mcpInitialize);
    assert.equal(init.status, 200, JSON.stringify(init.body));
    assert.ok(init.body.result.serverInfo, JSON.stringify(init.body));
    assert.ok(init.sessionId, 'a Streamable HTTP session');
    const initialized = await fetch(mcpUrl, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        accept: 'application/json, text/event-stream',
        authorization: `Bearer ${token.accessToken}`,
        'mcp-session-id': init.sessionId,
      },
      body: JSON.stringify({ jsonrpc: '2.0', method: 'notifications/initialized' }),
    });
    assert.equal(initialized.status, 202);
    const tools = await mcpPost(mcpUrl, token.accessToken, { jsonrpc: '2.0', id: 2, method: 'tools/list', params: {} }, init.sessionId);
    assert.equal(tools.status, 200);
    assert.ok(tools.body.result.tools.length > 0, JSON.stringify(tools.body));
    assert.ok(tools.body.result.tools.every((t) => typeof t.name === 'string'));
    await client.dispose();
  });

  test('login against oidc-provider, a forced refresh, an MCP call, logout with revocation', async () => {
    const { mcpUrl, issuer } = oidc.ready;
    // oidc-provider offers DPoP, and its resource server here takes Bearer tokens only.
    const { client } = daemon(`${server('oidc', mcpUrl)}[mcp_servers.oidc.oauth]\ndpop = false\n`);
    await initialize(client);
    const changes = [];
    client.onAuthStatusChanged((n) => changes.push(n.authStatus));
    await login(client, 'oidc');
    const status = await statusOf(client, 'oidc');
    assert.equal(status.authStatus, 'loggedIn');
    assert.equal(status.issuer, issuer);

    const first = await client.token({ name: 'oidc' });
    const before = await whoami(mcpUrl, first.accessToken);
    assert.equal(before.status, 200);
    assert.equal(before.me.sub, 'interop-user');
    // Tokens live an hour: asking for two hours of validity forces a refresh.
    const second = await client.token({ name: 'oidc', minValiditySecs: 7200 });
    assert.notEqual(second.accessToken, first.accessToken, 'a refreshed access token');
    assert.ok(second.expiresAt >= first.expiresAt, `${second.expiresAt} >= ${first.expiresAt}`);
    const refreshed = await whoami(mcpUrl, second.accessToken);
    assert.equal(refreshed.status, 200);
    assert.equal(refreshed.me.client_id, before.me.client_id);
    // Without a need to refresh, the same token comes back.
    assert.equal((await client.token({ name: 'oidc' })).accessToken, second.accessToken);

    const out = await client.logout({ name: 'oidc', revoke: true });
    assert.deepEqual(out, { removed: true, revoked: true });
    assert.equal((await whoami(mcpUrl, second.accessToken)).status, 401, 'the revoked token is refused at the server');
    assert.equal((await statusOf(client, 'oidc')).authStatus, 'notLoggedIn');
    assert.equal((await client.token({ name: 'oidc' }).catch((e) => e)).kind, 'notLoggedIn');
    assert.equal(changes[0], 'loggedIn');
    assert.equal(changes.at(-1), 'notLoggedIn');
    await client.dispose();
  });

  test('a pending login, cancelled, completes with success false', async () => {
    const { client } = daemon(server('oidc', oidc.ready.mcpUrl));
    await initialize(client);
    const completed = client.waitFor('mcpServer/oauthLogin/completed', (n) => n.name === 'oidc', { timeoutMs: LOGIN_TIMEOUT_MS });
    const seen = [];
    client.onLoginCompleted((n) => seen.push(n));
    const { authorizationUrl } = await client.login({ name: 'oidc' });
    assert.match(authorizationUrl, new RegExp(`^${oidc.ready.issuer}/`));
    assert.deepEqual(await client.cancel({ name: 'oidc' }), { cancelled: true });
    const done = await completed;
    assert.equal(done.success, false);
    assert.equal(done.errorKind, 'loginCancelled');
    assert.ok(done.error);
    assert.deepEqual(seen, [done], 'one completion per login, to every subscriber');
    assert.deepEqual(await client.cancel({ name: 'oidc' }), { cancelled: false });
    assert.equal((await statusOf(client, 'oidc')).authStatus, 'notLoggedIn');
    await client.dispose();
  });

  test("over an extension's own vscode-jsonrpc MessageConnection", async () => {
    const validator = new ConversationValidator(schemas);
    conversations.push(validator);
    const child = spawn(bin, [], {
      env: { ...process.env, MCP_APP_SERVER_HOME: home(server('oidc', oidc.ready.mcpUrl)) },
      stdio: ['pipe', 'pipe', 'ignore'],
    });
    // The bytes on the wire, both ways, decoded independently of vscode-jsonrpc.
    const toDaemon = new PassThrough();
    toDaemon.pipe(child.stdin);
    for (const [direction, stream] of [['send', toDaemon], ['receive', child.stdout]]) {
      const decoder = new pkg.FrameDecoder('content-length');
      stream.on('data', (chunk) => {
        for (const message of decoder.push(chunk)) validator.check(direction, message);
      });
    }
    const connection = createMessageConnection(new StreamMessageReader(child.stdout), new StreamMessageWriter(toDaemon));
    connection.listen();
    const client = pkg.fromMessageConnection(connection);

    await initialize(client);
    const { data } = await client.listMcpServerStatus();
    assert.equal(data[0].name, 'oidc');
    const error = await client.logout({ name: 'nope' }).catch((e) => e);
    assert.ok(error instanceof pkg.McpAppServerError, String(error));
    assert.equal(error.kind, 'serverNotFound');
    // Notifications arrive through the adapter too.
    const completed = client.waitFor('mcpServer/oauthLogin/completed', undefined, { timeoutMs: LOGIN_TIMEOUT_MS });
    await client.login({ name: 'oidc' });
    await client.cancel({ name: 'oidc' });
    assert.equal((await completed).errorKind, 'loginCancelled');

    await client.dispose();
    const late = await client.listMcpServerStatus().catch((e) => e);
    assert.equal(late.reason, 'disposed');
    toDaemon.end();
    const [code] = await once(child, 'exit');
    assert.equal(code, 0);
    assert.ok(validator.seen.send >= 6 && validator.seen.receive >= 6, JSON.stringify(validator.seen));
  });

  test('a daemon that cannot start fails the first request, not the process', async () => {
    const client = pkg.spawnAppServer({ bin: join(work, 'no-such-binary'), stderr: 'ignore' });
    const error = await client.initialize({ clientInfo: { name: 'x', version: '1' } }).catch((e) => e);
    assert.ok(error instanceof pkg.ClientError, String(error));
    assert.equal(error.reason, 'closed');
    assert.match(error.message, /no-such-binary/);
    await client.dispose();
  });
});

describe('the transport, against streams nobody answers', () => {
  const silent = (options = {}) => {
    const fromDaemon = new PassThrough();
    const toDaemon = new PassThrough();
    const written = [];
    const decoder = new pkg.FrameDecoder(options.framing ?? 'content-length');
    toDaemon.on('data', (chunk) => written.push(...decoder.push(chunk)));
    return { client: pkg.connectStreams(fromDaemon, toDaemon, options), fromDaemon, toDaemon, written };
  };

  test('timeouts and aborts reject with ClientError; late replies are dropped', async () => {
    const { client, fromDaemon, written } = silent({ requestTimeoutMs: 50 });
    const timedOut = await client.listMcpServerStatus().catch((e) => e);
    assert.ok(timedOut instanceof pkg.ClientError);
    assert.equal(timedOut.reason, 'timeout');
    const controller = new AbortController();
    const aborted = client.token({ name: 'a' }, { signal: controller.signal, timeoutMs: 0 }).catch((e) => e);
    controller.abort();
    assert.equal((await aborted).reason, 'aborted');
    const waited = await client.waitFor('mcpServer/authStatus/changed', undefined, { timeoutMs: 20 }).catch((e) => e);
    assert.equal(waited.reason, 'timeout');
    assert.deepEqual(written.map((m) => [m.id, m.method]), [[1, 'mcpServerStatus/list'], [2, 'mcpServer/oauth/token']]);
    // The reply to the timed-out request arrives after all: ignored, and the client goes on.
    fromDaemon.write(pkg.encodeMessage({ jsonrpc: '2.0', id: 1, result: { data: [] } }, 'content-length'));
    const answered = client.reloadConfig({}, { timeoutMs: 0 });
    await new Promise((r) => setImmediate(r));
    fromDaemon.write(pkg.encodeMessage({ jsonrpc: '2.0', id: 3, result: {} }, 'content-length'));
    assert.deepEqual(await answered, {});
    await client.dispose();
  });

  test('notifications split across chunks reach typed subscribers; dispose rejects what is pending', async () => {
    const { client, fromDaemon, toDaemon } = silent();
    const changes = [];
    const subscription = client.onAuthStatusChanged((n) => changes.push(n));
    const bytes = Buffer.concat([
      pkg.encodeMessage({ jsonrpc: '2.0', method: 'mcpServer/authStatus/changed', params: { name: 'a', authStatus: 'expired' } }, 'content-length'),
      pkg.encodeMessage({ jsonrpc: '2.0', method: 'mcpServer/oauthLogin/completed', params: { name: 'a', success: true } }, 'content-length'),
      pkg.encodeMessage({ jsonrpc: '2.0', method: 'mcpServer/authStatus/changed', params: { name: 'a', authStatus: 'loggedIn' } }, 'content-length'),
    ]);
    for (let i = 0; i < bytes.length; i += 7) fromDaemon.write(bytes.subarray(i, i + 7));
    await new Promise((r) => setImmediate(r));
    assert.deepEqual(changes, [{ name: 'a', authStatus: 'expired' }, { name: 'a', authStatus: 'loggedIn' }]);
    subscription.dispose();
    fromDaemon.write(pkg.encodeMessage({ jsonrpc: '2.0', method: 'mcpServer/authStatus/changed', params: { name: 'b', authStatus: 'expired' } }, 'content-length'));
    await new Promise((r) => setImmediate(r));
    assert.equal(changes.length, 2, 'a disposed subscription hears nothing');

    const pending = client.login({ name: 'a' }).catch((e) => e);
    const waiting = client.waitFor('mcpServer/oauthLogin/completed').catch((e) => e);
    await client.dispose();
    assert.equal((await pending).reason, 'disposed');
    assert.equal((await waiting).reason, 'disposed');
    assert.ok(toDaemon.writableEnded, "dispose ends the daemon's stdin");
  });

  test('bytes that are not framed JSON-RPC close the connection with reason protocol', async () => {
    const { client, fromDaemon } = silent({ framing: 'newline' });
    const pending = client.listMcpServerStatus().catch((e) => e);
    fromDaemon.write('this is not json\n');
    const error = await pending;
    assert.equal(error.reason, 'protocol');
    assert.equal((await client.reloadConfig().catch((e) => e)).reason, 'protocol');
    const oversized = new pkg.FrameDecoder('content-length', 1024);
    assert.throws(() => oversized.push(Buffer.from('Content-Length: 4096\r\n\r\n')), pkg.FramingError);
  });
});

test('the schema check refuses a message that does not match schema/', () => {
  const validator = new ConversationValidator(schemas);
  validator.check('send', { jsonrpc: '2.0', id: 1, method: 'mcpServer/oauth/login', params: { name: 'a' } });
  validator.check('receive', { jsonrpc: '2.0', id: 1, result: { flow: 'browser', authorizationUrl: 'https://as/authorize', redirectUri: 'http://127.0.0.1:1/callback/x', grant: 'authorizationCode' } });
  assert.deepEqual(validator.problems, []);
  // A browser login without its URL does not fit the union.
  validator.check('send', { jsonrpc: '2.0', id: 3, method: 'mcpServer/oauth/login', params: { name: 'a' } });
  validator.check('receive', { jsonrpc: '2.0', id: 3, result: { flow: 'browser', grant: 'authorizationCode' } });
  assert.equal(validator.problems.length, 1, validator.problems.join('\n'));
  validator.problems.length = 0;
  validator.check('send', { jsonrpc: '2.0', id: 2, method: 'mcpServer/oauth/login', params: { name: 'a', scope: 'x' } });
  validator.check('receive', { jsonrpc: '2.0', id: 1, result: { authorizationUrl: 7 } });
  validator.check('receive', { jsonrpc: '2.0', method: 'mcpServer/authStatus/changed', params: { name: 'a', authStatus: 'sleepy' } });
  validator.check('receive', { jsonrpc: '2.0', id: 99, result: {} });
  validator.check('receive', { jsonrpc: '2.0', id: 1, error: { code: -32010, message: 'x', data: { kind: 'madeUp' } } });
  assert.equal(validator.problems.length, 5, validator.problems.join('\n'));
});

// Last, so that tsc (started in `before`) ran alongside the daemon tests.
test("a frontend's TypeScript, ES module and CommonJS, type-checks under strict against the installed package", async () => {
  const run = await typeCheck;
  assert.ok(run.ok, `tsc --strict on a frontend's TypeScript failed:\n${run.out}`);
});
