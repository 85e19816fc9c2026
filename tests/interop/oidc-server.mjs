#!/usr/bin/env node
// Interop peer: oidc-provider (a certified OpenID provider) as the authorization server, plus
// a small protected MCP resource that points at it. Login and consent finish by themselves,
// so a cookie-keeping HTTP client ("browser.mjs") reaches the client's redirect_uri.
//
// With MTLS=1 (README.md) everything is served over HTTPS, with RFC 8705 mutual TLS at the
// token endpoints' aliases on a third listener and certificate-bound access tokens.
//
// Usage: node oidc-server.mjs [--port N] [--mcp-port M] [--mtls-port K] [--exit-with-stdin]
// Prints one JSON line on stdout when ready (see README.md); everything else goes to stderr.

import crypto from 'node:crypto';
import http from 'node:http';
import { parseArgs } from 'node:util';
import {
  exitOnSignals,
  exitWhenStdinCloses,
  listen,
  parsePort,
  printReadyLine,
  routeConsoleToStderr,
  sendJson,
  sendText,
} from './lib/common.mjs';
import { createMcpResource } from './lib/mcp-resource.mjs';
import {
  ALIASED_ROUTES,
  createRequestCounter,
  createTlsServer,
  fetchTrusting,
  mtlsEndpointAliases,
  mtlsFeature,
  readMtlsSettings,
} from './lib/mtls.mjs';

routeConsoleToStderr();

const { values: args } = parseArgs({
  options: {
    port: { type: 'string' },
    'mcp-port': { type: 'string' },
    'mtls-port': { type: 'string' },
    'exit-with-stdin': { type: 'boolean', default: false },
  },
});

const env = process.env;
const settings = {
  port: parsePort(args.port ?? env.OIDC_PORT, 'port'),
  mcpPort: parsePort(args['mcp-port'] ?? env.MCP_PORT, 'mcp port'),
  preregisteredClientId: env.PREREGISTERED_CLIENT_ID || 'preregistered-confidential',
  preregisteredClientSecret: env.PREREGISTERED_CLIENT_SECRET || 's3cret-for-tests',
  preregisteredRedirectUris: (env.PREREGISTERED_REDIRECT_URIS || 'http://127.0.0.1/callback')
    .split(',').map((uri) => uri.trim()).filter(Boolean),
  cimdFakeOrigin: new URL(env.CIMD_FAKE_ORIGIN || 'https://client.test').origin,
  cimdHostOrigin: env.CIMD_HOST_ORIGIN ? new URL(env.CIMD_HOST_ORIGIN).origin : undefined,
  accessTokenTtl: Number(env.ACCESS_TOKEN_TTL || 3600),
  accessTokenFormat: env.ACCESS_TOKEN_FORMAT || 'jwt',
  resourceScopes: (env.MCP_SCOPES || 'mcp:read mcp:write').split(' ').filter(Boolean),
  requiredScopes: (env.MCP_REQUIRED_SCOPES || '').split(' ').filter(Boolean),
  interactionResult: env.INTERACTION_RESULT || 'approve',
  // RFC 8628 device flow (device_authorization_endpoint), off unless asked for.
  deviceFlow: env.DEVICE_FLOW === '1',
  accountId: env.ACCOUNT_ID || 'interop-user',
  mtlsPort: parsePort(args['mtls-port'] ?? env.MTLS_PORT, 'mtls port'),
  mtls: readMtlsSettings(env),
};
if (!['jwt', 'opaque'].includes(settings.accessTokenFormat)) {
  throw new Error(`ACCESS_TOKEN_FORMAT must be jwt or opaque, got ${settings.accessTokenFormat}`);
}
if (!['approve', 'deny'].includes(settings.interactionResult)) {
  throw new Error(`INTERACTION_RESULT must be approve or deny, got ${settings.interactionResult}`);
}

// Dynamic import after the console is rerouted: oidc-provider prints notices at load time.
const { default: Provider, errors } = await import('oidc-provider');

// Every listener first: the issuer and the resource URL embed the bound (maybe ephemeral) ports.
// With MTLS=1: the AS listener asks for no certificate (a browser reaches /auth without one),
// the mTLS alias listener and the MCP resource ask for one and accept any (or none).
const { mtls } = settings;
const requests = createRequestCounter();
let asHandler = (_req, res) => sendText(res, 503, 'starting');
let mcpHandler = (_req, res) => sendText(res, 503, 'starting');
const toAs = (req, res) => asHandler(req, res);
const toMcp = (req, res) => mcpHandler(req, res);
const asServer = mtls
  ? createTlsServer(mtls, requests.wrap('as', toAs))
  : http.createServer(toAs);
const mcpServer = mtls
  ? createTlsServer(mtls, requests.wrap('mcp', toMcp, { ignore: ['/__requests'] }), { clientCertificates: true })
  : http.createServer(toMcp);
const mtlsServer = mtls
  ? createTlsServer(mtls, requests.wrap('mtls', toAs), { clientCertificates: true, ca: mtls.clientCa })
  : undefined;
const scheme = mtls ? 'https' : 'http';
const port = await listen(asServer, settings.port);
const mcpPort = await listen(mcpServer, settings.mcpPort);
const mtlsPort = mtlsServer ? await listen(mtlsServer, settings.mtlsPort) : undefined;
const issuer = `${scheme}://127.0.0.1:${port}`;
const mcpOrigin = `${scheme}://127.0.0.1:${mcpPort}`;
const mtlsOrigin = mtlsServer ? `https://127.0.0.1:${mtlsPort}` : undefined;
const resource = `${mcpOrigin}/mcp`;

/** The provider's only outgoing fetch is the CIMD document; map the fake https host to loopback. */
async function peerFetch(url, options) {
  const target = new URL(url);
  if (settings.cimdHostOrigin && target.origin === settings.cimdFakeOrigin) {
    // Dropping the dispatcher drops oidc-provider's special-use-address guard, which would
    // refuse 127.0.0.1; only this mapped host gets that treatment.
    const { dispatcher: _guard, ...rest } = options;
    const headers = new Headers(rest.headers);
    headers.set('forwarded', `host=${target.host};proto=https`);
    headers.set('x-forwarded-host', target.host);
    headers.set('x-forwarded-proto', 'https');
    const mapped = new URL(`${target.pathname}${target.search}`, settings.cimdHostOrigin);
    console.error(`oidc-server: CIMD fetch ${target.href} -> ${mapped.href}`);
    return fetch(mapped, { ...rest, headers });
  }
  return fetch(url, options);
}

/** Preregistered clients: any 127.0.0.1 port and any path under /callback/ (see README). */
function preregisteredCallbackAllowed(value) {
  const url = URL.parse(value);
  return url !== null && url.protocol === 'http:' && url.hostname === '127.0.0.1'
    && url.username === '' && url.hash === ''
    && (url.pathname === '/callback' || url.pathname.startsWith('/callback/'));
}

// EC P-256: generated in a millisecond, where an RSA key costs most of a second at startup.
const { privateKey } = crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' });
const signingKey = { ...privateKey.export({ format: 'jwk' }), kid: 'interop-es256', use: 'sig', alg: 'ES256' };

const preregisteredClientIds = new Set([settings.preregisteredClientId]);
const clients = [{
  client_id: settings.preregisteredClientId,
  client_secret: settings.preregisteredClientSecret,
  // oidc-provider also accepts client_secret_post for it: it treats the two as one.
  token_endpoint_auth_method: 'client_secret_basic',
  application_type: 'native',
  redirect_uris: settings.preregisteredRedirectUris,
  grant_types: ['authorization_code', 'refresh_token'],
  response_types: ['code'],
  client_name: 'interop preregistered confidential client',
}];
if (mtls) {
  // RFC 8705 section 2.1: authenticated by a CA-issued certificate with this subject, at the
  // mTLS aliases; its access tokens are bound to that certificate.
  preregisteredClientIds.add(mtls.preregisteredClientId);
  clients.push({
    client_id: mtls.preregisteredClientId,
    token_endpoint_auth_method: 'tls_client_auth',
    tls_client_auth_subject_dn: mtls.preregisteredSubjectDn,
    tls_client_certificate_bound_access_tokens: true,
    application_type: 'native',
    redirect_uris: settings.preregisteredRedirectUris,
    grant_types: ['authorization_code', 'refresh_token'],
    response_types: ['code'],
    client_name: 'interop preregistered mutual TLS client',
  });
}

const provider = new Provider(issuer, {
  clients,
  jwks: { keys: [signingKey] },
  clientDefaults: {
    grant_types: ['authorization_code'],
    id_token_signed_response_alg: 'ES256',
    response_types: ['code'],
    token_endpoint_auth_method: 'client_secret_basic',
  },
  cookies: { keys: [crypto.randomBytes(32).toString('base64url')] },
  scopes: ['openid', 'offline_access'],
  claims: { openid: ['sub'] },
  pkce: { required: () => true },
  features: {
    devInteractions: { enabled: false },
    registration: { enabled: true },
    revocation: { enabled: true },
    introspection: { enabled: true },
    clientIdMetadataDocument: { enabled: true, ack: 'draft-02' },
    deviceFlow: { enabled: settings.deviceFlow },
    ...(mtls ? { mTLS: mtlsFeature() } : {}),
    resourceIndicators: {
      enabled: true,
      defaultResource: async (_ctx, _client, oneOf) => oneOf ?? resource,
      useGrantedResource: async () => true,
      getResourceServerInfo: async (_ctx, indicator) => {
        if (indicator !== resource) {
          throw new errors.InvalidTarget(`unknown resource ${indicator}; this server protects ${resource}`);
        }
        return {
          scope: settings.resourceScopes.join(' '),
          audience: resource,
          accessTokenTTL: settings.accessTokenTtl,
          accessTokenFormat: settings.accessTokenFormat,
          ...(settings.accessTokenFormat === 'jwt' ? { jwt: { sign: { alg: 'ES256' } } } : {}),
        };
      },
    },
  },
  // Named here because the mTLS aliases below repeat them on the other listener.
  routes: ALIASED_ROUTES,
  ...(mtls ? {
    // oidc-provider's default list, plus both RFC 8705 methods (it adds none by itself).
    clientAuthMethods: [
      'client_secret_basic', 'client_secret_jwt', 'client_secret_post', 'private_key_jwt', 'none',
      'tls_client_auth', 'self_signed_tls_client_auth',
    ],
    // It publishes tls_client_certificate_bound_access_tokens itself, not the aliases.
    discovery: { mtls_endpoint_aliases: mtlsEndpointAliases(mtlsOrigin, { deviceFlow: settings.deviceFlow }) },
  } : {}),
  fetch: peerFetch,
  interactions: { url: async (_ctx, interaction) => `/interaction/${interaction.uid}` },
  issueRefreshToken: async (_ctx, client) => client.grantTypeAllowed('refresh_token'),
  findAccount: async (_ctx, sub) => ({ accountId: sub, claims: async () => ({ sub }) }),
  ttl: { AccessToken: settings.accessTokenTtl },
});

const redirectUriAllowed = provider.Client.prototype.redirectUriAllowed;
provider.Client.prototype.redirectUriAllowed = function allowPreregisteredCallbacks(value) {
  if (preregisteredClientIds.has(this.clientId) && preregisteredCallbackAllowed(value)) return true;
  return redirectUriAllowed.call(this, value);
};

provider.on('server_error', (_ctx, error) => console.error('oidc-server: server_error', error));
if (mtls) {
  // oidc-provider answers a failed client authentication with a bare "invalid_client"; the
  // reason (no certificate, unregistered one, subject mismatch) goes to the log.
  for (const event of ['grant.error', 'revocation.error', 'introspection.error', 'registration_create.error']) {
    provider.on(event, (ctx, error) => {
      console.error(`oidc-server: ${event} on ${ctx.host}: ${error.error}: ${error.error_detail ?? error.error_description}`);
    });
  }
  provider.on('registration_create.success', (ctx, client) => requests.registered(ctx.host, client.metadata()));
}

/** Plays the user: logs in as one account, consents to every missing scope, or denies. */
async function finishInteraction(req, res) {
  let details;
  try {
    details = await provider.interactionDetails(req, res);
  } catch (error) {
    return sendText(res, 400, `interaction not found (cookies lost?): ${error.message}`);
  }
  const { prompt, params, session, grantId } = details;
  if (settings.interactionResult === 'deny') {
    return provider.interactionFinished(req, res, {
      error: 'access_denied',
      error_description: 'the interop user denied the request',
    }, { mergeWithLastSubmission: false });
  }
  if (prompt.name === 'login') {
    return provider.interactionFinished(req, res, { login: { accountId: settings.accountId } }, {
      mergeWithLastSubmission: false,
    });
  }
  if (prompt.name === 'consent') {
    const grant = grantId
      ? await provider.Grant.find(grantId)
      : new provider.Grant({ accountId: session.accountId, clientId: params.client_id });
    const { missingOIDCScope, missingOIDCClaims, missingResourceScopes } = prompt.details;
    if (missingOIDCScope) grant.addOIDCScope(missingOIDCScope.join(' '));
    if (missingOIDCClaims) grant.addOIDCClaims(missingOIDCClaims);
    for (const [indicator, scopes] of Object.entries(missingResourceScopes ?? {})) {
      grant.addResourceScope(indicator, scopes.join(' '));
    }
    const savedGrantId = await grant.save();
    return provider.interactionFinished(req, res, { consent: { grantId: savedGrantId } }, {
      mergeWithLastSubmission: true,
    });
  }
  return sendText(res, 400, `unexpected interaction prompt ${prompt.name}`);
}

const providerCallback = provider.callback();
asHandler = (req, res) => {
  if (req.method === 'GET' && /^\/interaction\/[^/?]+(\?.*)?$/.test(req.url)) {
    finishInteraction(req, res).catch((error) => {
      console.error('oidc-server: interaction failed', error);
      if (!res.headersSent) sendText(res, 500, 'interaction failed');
    });
    return;
  }
  providerCallback(req, res);
};

const mcp = createMcpResource({
  origin: mcpOrigin,
  issuer,
  jwksUri: `${issuer}/jwks`,
  // Over HTTPS the resource calls its issuer trusting only the peer's own authority.
  fetch: mtls ? fetchTrusting(mtls.serverCa) : fetch,
  certificateBoundTokens: Boolean(mtls),
  // Opaque tokens can be revoked, and only the issuer knows whether they still are: ask it
  // (RFC 7662) as the preregistered confidential client, which may introspect any token.
  introspection: settings.accessTokenFormat === 'opaque' ? {
    endpoint: `${issuer}/token/introspection`,
    clientId: settings.preregisteredClientId,
    clientSecret: settings.preregisteredClientSecret,
  } : undefined,
  scopesSupported: settings.resourceScopes,
  requiredScopes: settings.requiredScopes,
});
mcpHandler = (req, res) => {
  if (mtls && req.method === 'GET' && new URL(req.url, mcpOrigin).pathname === '/__requests') {
    return sendJson(res, 200, requests.snapshot());
  }
  return mcp.handle(req, res).catch((error) => {
    console.error('oidc-server: MCP request failed', error);
    if (!res.headersSent) sendText(res, 500, 'internal error');
  });
};

exitOnSignals(() => {
  asServer.close();
  mcpServer.close();
  mtlsServer?.close();
});
if (args['exit-with-stdin']) exitWhenStdinCloses();

printReadyLine({
  issuer,
  port,
  mcpUrl: resource,
  mcpPort,
  resourceMetadataUrl: mcp.resourceMetadataUrl,
  preregisteredClientId: settings.preregisteredClientId,
  cimdFakeOrigin: settings.cimdFakeOrigin,
  cimdHostOrigin: settings.cimdHostOrigin ?? null,
  ...(mtls ? {
    mtlsPort,
    mtlsOrigin,
    preregisteredMtlsClientId: mtls.preregisteredClientId,
    requestsUrl: `${mcpOrigin}/__requests`,
  } : {}),
});
