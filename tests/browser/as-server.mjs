#!/usr/bin/env node
// The authorization server of the real-browser test: oidc-provider with its own login and
// consent pages (devInteractions: a form asking for a login and a password, then a consent
// form with "Continue", and a "[ Cancel ]" link that denies), plus the small protected MCP
// resource of tests/interop/lib that points at it. A person's part is played by Chromium.
//
// Usage: node as-server.mjs [--exit-with-stdin]
// Prints one JSON line on stdout when ready: {issuer, mcpUrl}; logs go to stderr.

import crypto from 'node:crypto';
import http from 'node:http';
import { parseArgs } from 'node:util';
import {
  exitOnSignals,
  exitWhenStdinCloses,
  listen,
  printReadyLine,
  routeConsoleToStderr,
  sendText,
} from '../interop/lib/common.mjs';
import { createMcpResource } from '../interop/lib/mcp-resource.mjs';

routeConsoleToStderr();
const { values: args } = parseArgs({
  options: { 'exit-with-stdin': { type: 'boolean', default: false } },
});
const { default: Provider, errors } = await import('oidc-provider');

let asHandler = (_req, res) => sendText(res, 503, 'starting');
let mcpHandler = (_req, res) => sendText(res, 503, 'starting');
const asServer = http.createServer((req, res) => asHandler(req, res));
const mcpServer = http.createServer((req, res) => mcpHandler(req, res));
const port = await listen(asServer, 0);
const mcpPort = await listen(mcpServer, 0);
const issuer = `http://127.0.0.1:${port}`;
const mcpOrigin = `http://127.0.0.1:${mcpPort}`;
const resource = `${mcpOrigin}/mcp`;
const scopes = ['mcp:read'];

const { privateKey } = crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' });
const signingKey = { ...privateKey.export({ format: 'jwk' }), kid: 'browser-es256', use: 'sig', alg: 'ES256' };

const provider = new Provider(issuer, {
  jwks: { keys: [signingKey] },
  clientDefaults: {
    grant_types: ['authorization_code'],
    id_token_signed_response_alg: 'ES256',
    response_types: ['code'],
    token_endpoint_auth_method: 'none',
  },
  cookies: { keys: [crypto.randomBytes(32).toString('base64url')] },
  scopes: ['openid', 'offline_access'],
  claims: { openid: ['sub'] },
  pkce: { required: () => true },
  features: {
    devInteractions: { enabled: true },
    registration: { enabled: true },
    resourceIndicators: {
      enabled: true,
      defaultResource: async (_ctx, _client, oneOf) => oneOf ?? resource,
      useGrantedResource: async () => true,
      getResourceServerInfo: async (_ctx, indicator) => {
        if (indicator !== resource) {
          throw new errors.InvalidTarget(`unknown resource ${indicator}; this server protects ${resource}`);
        }
        return {
          scope: scopes.join(' '),
          audience: resource,
          accessTokenTTL: 3600,
          accessTokenFormat: 'jwt',
          jwt: { sign: { alg: 'ES256' } },
        };
      },
    },
  },
  findAccount: async (_ctx, sub) => ({ accountId: sub, claims: async () => ({ sub }) }),
});
provider.on('server_error', (_ctx, error) => console.error('as-server: server_error', error));
asHandler = provider.callback();

const mcp = createMcpResource({
  origin: mcpOrigin,
  issuer,
  jwksUri: `${issuer}/jwks`,
  scopesSupported: scopes,
});
mcpHandler = (req, res) => {
  mcp.handle(req, res).catch((error) => {
    console.error('as-server: MCP request failed', error);
    if (!res.headersSent) sendText(res, 500, 'internal error');
  });
};

exitOnSignals(() => {
  asServer.close();
  mcpServer.close();
});
if (args['exit-with-stdin']) exitWhenStdinCloses();
printReadyLine({ issuer, mcpUrl: resource });
