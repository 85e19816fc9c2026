// Small helpers shared by the interop peers and the Node check client.
// Kept dependency-free: Node 20 ships fetch, crypto and http.

import net from 'node:net';

/** Writes one line to stdout: the only thing the peers ever print there (the ready line). */
export function printReadyLine(object) {
  process.stdout.write(`${JSON.stringify(object)}\n`);
}

/**
 * oidc-provider and the SDK demo print notices with console.log/console.info, which go to
 * stdout; the ready-line contract needs stdout clean, so route them to stderr.
 */
export function routeConsoleToStderr() {
  const toStderr = (...args) => console.error(...args);
  console.log = toStderr;
  console.info = toStderr;
  console.debug = toStderr;
}

/** Exits 0 on SIGTERM/SIGINT so a test stopping the peer by PID sees a clean exit. */
export function exitOnSignals(cleanup = () => {}) {
  for (const signal of ['SIGTERM', 'SIGINT']) {
    process.on(signal, () => {
      try {
        cleanup();
      } finally {
        process.exit(0);
      }
    });
  }
}

/**
 * Opt-in lifeline: exit when stdin reaches EOF, so a peer spawned with a piped stdin dies
 * with its parent even when the parent could not send SIGTERM (a panicking test).
 */
export function exitWhenStdinCloses() {
  process.stdin.on('end', () => process.exit(0));
  process.stdin.on('close', () => process.exit(0));
  process.stdin.resume();
}

/** Parses a port from argv/env text; 0 (or absent) means ephemeral. */
export function parsePort(value, name) {
  if (value === undefined || value === '') return 0;
  const port = Number(value);
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    throw new Error(`${name} must be a port number (0 for ephemeral), got ${JSON.stringify(value)}`);
  }
  return port;
}

/** Listens on 127.0.0.1:port and resolves with the bound port. */
export function listen(server, port, host = '127.0.0.1') {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve(server.address().port);
    });
  });
}

/** Finds a free TCP port by binding port 0 and releasing it (racy, fine for tests). */
export async function freePort(host = '127.0.0.1') {
  const server = net.createServer();
  const port = await listen(server, 0, host);
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/** Reads a whole request body as text, refusing bodies over `limit` bytes. */
export function readBody(req, limit = 1024 * 1024) {
  return new Promise((resolve, reject) => {
    const chunks = [];
    let size = 0;
    req.on('data', (chunk) => {
      size += chunk.length;
      if (size > limit) {
        reject(new Error('request body too large'));
        req.destroy();
        return;
      }
      chunks.push(chunk);
    });
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

export function sendJson(res, status, body, headers = {}) {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    'content-type': 'application/json',
    'cache-control': 'no-store',
    'content-length': Buffer.byteLength(text),
    ...headers,
  });
  res.end(text);
}

export function sendText(res, status, text, headers = {}) {
  res.writeHead(status, {
    'content-type': 'text/plain; charset=utf-8',
    'content-length': Buffer.byteLength(text),
    ...headers,
  });
  res.end(text);
}

/** True for hosts RFC 8252 loopback redirects may use. */
export function isLoopbackHost(hostname) {
  return hostname === '127.0.0.1' || hostname === 'localhost' || hostname === '[::1]' || hostname === '::1'
    || /^127\.\d+\.\d+\.\d+$/.test(hostname);
}

