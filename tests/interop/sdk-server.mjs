#!/usr/bin/env node
// Interop peer: the MCP TypeScript SDK's demo server (simpleStreamableHttp --oauth --oauth-strict),
// a real Streamable HTTP MCP server with its demo authorization server (DCR, approves at once).
// The demo embeds its ports in the resource and issuer URLs, so it cannot use port 0: this
// launcher picks free ports when none are given, runs the demo in this process (one PID to
// stop), waits until both listeners answer, and prints one JSON ready line on stdout.
//
// Usage: node sdk-server.mjs [--port P] [--auth-port Q] [--exit-with-stdin]
//        (or env MCP_PORT / MCP_AUTH_PORT)

import { parseArgs } from 'node:util';
import {
  exitOnSignals,
  exitWhenStdinCloses,
  freePort,
  parsePort,
  printReadyLine,
  routeConsoleToStderr,
} from './lib/common.mjs';

routeConsoleToStderr();

const { values: args } = parseArgs({
  options: {
    port: { type: 'string' },
    'auth-port': { type: 'string' },
    'exit-with-stdin': { type: 'boolean', default: false },
  },
});

const mcpPort = parsePort(args.port ?? process.env.MCP_PORT, 'port') || await freePort();
let authPort = parsePort(args['auth-port'] ?? process.env.MCP_AUTH_PORT, 'auth port') || await freePort();
while (authPort === mcpPort) authPort = await freePort();

// Resolved through the package's exports ("./*" -> dist/esm/*), i.e. the file
// node_modules/@modelcontextprotocol/sdk/dist/esm/examples/server/simpleStreamableHttp.js.
const example = import.meta.resolve('@modelcontextprotocol/sdk/examples/server/simpleStreamableHttp.js');

process.env.MCP_PORT = String(mcpPort);
process.env.MCP_AUTH_PORT = String(authPort);
process.argv.push('--oauth', '--oauth-strict');

// The demo handles SIGINT itself; install ours for SIGTERM before it loads.
exitOnSignals();
if (args['exit-with-stdin']) exitWhenStdinCloses();

await import(example);

const mcpUrl = `http://localhost:${mcpPort}/mcp`;
const issuer = `http://localhost:${authPort}/`;
const probes = [
  `http://localhost:${mcpPort}/.well-known/oauth-protected-resource/mcp`,
  `http://localhost:${authPort}/.well-known/oauth-authorization-server`,
];

async function answers(url) {
  try {
    const response = await fetch(url, { signal: AbortSignal.timeout(1000) });
    await response.body?.cancel();
    return response.ok;
  } catch {
    return false;
  }
}

const deadline = Date.now() + 15_000;
for (;;) {
  const ready = await Promise.all(probes.map(answers));
  if (ready.every(Boolean)) break;
  if (Date.now() > deadline) {
    console.error(`sdk-server: demo did not answer on ${probes.join(' and ')} within 15 s`);
    process.exit(1);
  }
  await new Promise((resolve) => setTimeout(resolve, 50));
}

printReadyLine({
  mcpUrl,
  mcpPort,
  issuer,
  authPort,
  resourceMetadataUrl: probes[0],
});
