// Mutual TLS (RFC 8705) for oidc-server.mjs with MTLS=1: its settings, the HTTPS listeners,
// the client certificate a request came with, oidc-provider's `features.mTLS` callbacks, an
// HTTP client that trusts the peer's own certificate authority, and per-listener request
// counts a test can read.

import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import https from 'node:https';

/** The oidc-provider routes that get an mTLS alias (RFC 8705 section 5). */
export const ALIASED_ROUTES = {
  token: '/token',
  revocation: '/token/revocation',
  introspection: '/token/introspection',
  registration: '/reg',
  device_authorization: '/device/auth',
};

function readPem(env, name, what) {
  const file = env[name];
  if (!file) throw new Error(`MTLS=1 needs ${name}: the path of ${what}`);
  try {
    return fs.readFileSync(file, 'utf8');
  } catch (error) {
    throw new Error(`cannot read ${name}=${file} (${what}): ${error.message}`);
  }
}

/**
 * The MTLS=1 settings from the environment, or undefined without MTLS=1.
 * TLS_CERT: server chain PEM; TLS_KEY: its key; CLIENT_CA: the authority whose client
 * certificates count as verified (tls_client_auth); SERVER_CA: what the peer trusts when it
 * calls its own issuer (default TLS_CERT, which works when the chain ends with its root).
 */
export function readMtlsSettings(env) {
  if (env.MTLS !== '1') return undefined;
  const cert = readPem(env, 'TLS_CERT', 'the server certificate chain (PEM)');
  return {
    cert,
    key: readPem(env, 'TLS_KEY', 'the server private key (PEM)'),
    clientCa: readPem(env, 'CLIENT_CA', 'the client certificate authority (PEM)'),
    serverCa: env.SERVER_CA ? readPem(env, 'SERVER_CA', 'the server certificate authority (PEM)') : cert,
    preregisteredClientId: env.PREREGISTERED_MTLS_CLIENT_ID || 'preregistered-mtls',
    preregisteredSubjectDn: env.PREREGISTERED_MTLS_SUBJECT_DN || 'CN=interop-mtls-client',
  };
}

/**
 * An HTTPS server. `clientCertificates`: ask every client for a certificate, accept the
 * connection whatever it presents (or without one); `ca` then names the authority the
 * socket's `authorized` flag is checked against.
 */
export function createTlsServer(settings, handler, { clientCertificates = false, ca } = {}) {
  const options = { cert: settings.cert, key: settings.key };
  if (clientCertificates) {
    Object.assign(options, { requestCert: true, rejectUnauthorized: false });
    if (ca) options.ca = ca;
  }
  return https.createServer(options, handler);
}

/** The certificate the TLS peer of `socket` presented, or undefined. */
export function peerCertificate(socket) {
  return typeof socket?.getPeerX509Certificate === 'function'
    ? socket.getPeerX509Certificate() ?? undefined
    : undefined;
}

/** RFC 8705 `x5t#S256`: base64url SHA-256 of the certificate's DER. */
export function certificateThumbprint(certificate) {
  return crypto.createHash('sha256').update(certificate.raw).digest('base64url');
}

/** RFC 4514 string of a subject as Node prints it (one RDN a line, most significant first). */
export function subjectDn(certificate) {
  return certificate.subject.split('\n').filter(Boolean).reverse().join(',');
}

/** subjectAltName entries of one type (`DNS`, `IP Address`, `URI`, `email`). */
function altNames(certificate, type) {
  return (certificate.subjectAltName ?? '').split(', ')
    .filter((entry) => entry.startsWith(`${type}:`))
    .map((entry) => entry.slice(type.length + 1));
}

const SAN_TYPES = {
  tls_client_auth_san_dns: 'DNS',
  tls_client_auth_san_ip: 'IP Address',
  tls_client_auth_san_uri: 'URI',
  tls_client_auth_san_email: 'email',
};

/** oidc-provider's `features.mTLS`, reading the certificate off the request's TLS socket. */
export function mtlsFeature() {
  return {
    enabled: true,
    certificateBoundAccessTokens: true,
    selfSignedTlsClientAuth: true,
    tlsClientAuth: true,
    getCertificate: (ctx) => peerCertificate(ctx.req.socket),
    // The mTLS listener checks the chain against CLIENT_CA and records the outcome.
    certificateAuthorized: (ctx) => ctx.req.socket.authorized === true,
    certificateSubjectMatches: (ctx, property, expected) => {
      const certificate = peerCertificate(ctx.req.socket);
      if (!certificate) return false;
      if (property === 'tls_client_auth_subject_dn') return subjectDn(certificate) === expected;
      const type = SAN_TYPES[property];
      return type !== undefined && altNames(certificate, type).includes(expected);
    },
  };
}

/** Discovery's `mtls_endpoint_aliases` on `origin` for the enabled endpoints. */
export function mtlsEndpointAliases(origin, { deviceFlow }) {
  const url = (route) => `${origin}${ALIASED_ROUTES[route]}`;
  return {
    token_endpoint: url('token'),
    revocation_endpoint: url('revocation'),
    introspection_endpoint: url('introspection'),
    registration_endpoint: url('registration'),
    ...(deviceFlow ? { device_authorization_endpoint: url('device_authorization') } : {}),
  };
}

/**
 * A `fetch` for the peer's calls to its own listeners: HTTPS trusting only `ca`. Answers a
 * standard Response; bodies are strings or URLSearchParams.
 */
export function fetchTrusting(ca) {
  return (url, { method = 'GET', headers, body, signal } = {}) => new Promise((resolve, reject) => {
    const target = new URL(url);
    const transport = target.protocol === 'https:' ? https : http;
    const request = transport.request(target, {
      method,
      headers: Object.fromEntries(new Headers(headers)),
      ca,
      signal,
    }, (response) => {
      const chunks = [];
      response.on('data', (chunk) => chunks.push(chunk));
      response.on('error', reject);
      response.on('end', () => {
        const answerHeaders = new Headers();
        for (const [name, value] of Object.entries(response.headers)) {
          for (const one of [value].flat()) answerHeaders.append(name, one);
        }
        const bytes = Buffer.concat(chunks);
        resolve(new Response(bytes.length > 0 ? bytes : null, {
          status: response.statusCode,
          headers: answerHeaders,
        }));
      });
    });
    request.on('error', reject);
    request.end(body === undefined ? undefined : String(body));
  });
}

/**
 * Requests per listener and `METHOD /path`: how many arrived, how many of them came over a
 * connection that presented a client certificate, and the statuses answered; and the
 * dynamic registrations.
 */
export function createRequestCounter() {
  const listeners = {};
  const registrations = [];
  return {
    /** Keeps what a client registered (RFC 7591), without any secret, and where. */
    registered(host, metadata) {
      const { client_secret: _secret, registration_access_token: _token, ...rest } = metadata;
      registrations.push({ host, ...rest });
    },
    /** `handler` counting its requests as `listener`'s, except those to `ignore` paths. */
    wrap(listener, handler, { ignore = [] } = {}) {
      listeners[listener] ??= {};
      return (req, res) => {
        const path = new URL(req.url, 'http://x').pathname;
        if (ignore.includes(path)) return handler(req, res);
        const key = `${req.method} ${path}`;
        const entry = listeners[listener][key] ??= { requests: 0, withCertificate: 0, statuses: {} };
        entry.requests += 1;
        if (peerCertificate(req.socket)) entry.withCertificate += 1;
        res.on('finish', () => {
          entry.statuses[res.statusCode] = (entry.statuses[res.statusCode] ?? 0) + 1;
        });
        handler(req, res);
      };
    },
    snapshot: () => structuredClone({ ...listeners, registrations }),
  };
}
