// A tiny protected MCP resource server (Streamable HTTP, JSON responses only) that trusts one
// authorization server. It exists so the daemon has a real 401 -> PRM -> AS discovery path
// and a resource that checks the JWT access tokens oidc-provider issues (aud = this URL).

import crypto from 'node:crypto';
import { readBody, sendJson, sendText } from './common.mjs';
import { certificateThumbprint, peerCertificate } from './mtls.mjs';

const SIGNING_ALGS = {
  RS256: { hash: 'sha256' },
  PS256: { hash: 'sha256', padding: crypto.constants.RSA_PKCS1_PSS_PADDING },
  ES256: { hash: 'sha256', dsaEncoding: 'ieee-p1363' },
};

class TokenError extends Error {}

function decodeSegment(segment, what) {
  try {
    return JSON.parse(Buffer.from(segment, 'base64url').toString('utf8'));
  } catch {
    throw new TokenError(`access token ${what} is not base64url JSON`);
  }
}

/**
 * @param {object} options
 * @param {string} options.origin        e.g. http://127.0.0.1:4001 (no trailing slash)
 * @param {string} options.issuer        the trusted issuer (`iss` must equal it)
 * @param {string} options.jwksUri       where the issuer publishes its signing keys
 * @param {string[]} options.scopesSupported  advertised in the PRM document
 * @param {string[]} [options.requiredScopes] a token lacking one gets 403 insufficient_scope
 * @param {{endpoint: string, clientId: string, clientSecret: string}} [options.introspection]
 *        check tokens that are not JWTs (opaque) by RFC 7662 introspection at the issuer
 * @param {typeof fetch} [options.fetch] how to reach the issuer (JWKS, introspection)
 * @param {boolean} [options.certificateBoundTokens] advertise RFC 8705 bound tokens in the PRM
 *
 * A token whose claims hold `cnf["x5t#S256"]` (RFC 8705 section 3) is accepted only on a TLS
 * connection whose client certificate has that thumbprint, whatever the options.
 */
export function createMcpResource({
  origin, issuer, jwksUri, scopesSupported, requiredScopes = [], introspection,
  fetch = globalThis.fetch, certificateBoundTokens = false,
}) {
  const resource = `${origin}/mcp`;
  const prmPath = '/.well-known/oauth-protected-resource/mcp';
  const resourceMetadataUrl = `${origin}${prmPath}`;
  let keys = new Map();

  async function loadKeys() {
    const response = await fetch(jwksUri, { signal: AbortSignal.timeout(5000) });
    if (!response.ok) throw new TokenError(`JWKS fetch from ${jwksUri} answered ${response.status}`);
    const { keys: list } = await response.json();
    keys = new Map(list.map((jwk) => [jwk.kid, crypto.createPublicKey({ key: jwk, format: 'jwk' })]));
  }

  /** The claims of an opaque token, from the issuer: revoked or expired tokens are inactive. */
  async function introspect(token) {
    const basic = Buffer.from(`${encodeURIComponent(introspection.clientId)}:${encodeURIComponent(introspection.clientSecret)}`)
      .toString('base64');
    const response = await fetch(introspection.endpoint, {
      method: 'POST',
      headers: { authorization: `Basic ${basic}`, 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ token, token_type_hint: 'access_token' }),
      signal: AbortSignal.timeout(5000),
    });
    if (!response.ok) throw new TokenError(`introspection at ${introspection.endpoint} answered ${response.status}`);
    const claims = await response.json();
    if (claims.active !== true) throw new TokenError('access token is not active');
    if (claims.token_type && claims.token_type !== 'Bearer') throw new TokenError('access token is not a bearer token');
    return claims;
  }

  async function verify(token) {
    const parts = token.split('.');
    if (parts.length !== 3 && introspection) return checkClaims(await introspect(token));
    if (parts.length !== 3) throw new TokenError('access token is not a JWT');
    const header = decodeSegment(parts[0], 'header');
    const claims = decodeSegment(parts[1], 'payload');
    const alg = SIGNING_ALGS[header.alg];
    if (!alg) throw new TokenError(`access token alg ${header.alg} is not accepted`);
    if (header.typ !== 'at+jwt') throw new TokenError('access token typ is not at+jwt');
    if (!keys.has(header.kid)) await loadKeys();
    const key = keys.get(header.kid);
    if (!key) throw new TokenError('access token signed with an unknown key');
    const signed = Buffer.from(`${parts[0]}.${parts[1]}`);
    const { hash, ...keyOptions } = alg;
    const valid = crypto.verify(hash, signed, { key, ...keyOptions }, Buffer.from(parts[2], 'base64url'));
    if (!valid) throw new TokenError('access token signature does not verify');
    return checkClaims(claims);
  }

  function checkClaims(claims) {
    if (claims.iss !== issuer) throw new TokenError('access token issuer is not trusted here');
    const audiences = [claims.aud].flat();
    if (!audiences.includes(resource)) throw new TokenError(`access token audience is not ${resource}`);
    const now = Math.floor(Date.now() / 1000);
    if (typeof claims.exp !== 'number' || claims.exp <= now) throw new TokenError('access token expired');
    return claims;
  }

  /** RFC 8705 section 3: a certificate-bound token only with the certificate it is bound to. */
  function checkCertificateBinding(claims, socket) {
    const bound = claims.cnf?.['x5t#S256'];
    if (bound === undefined) return;
    const certificate = peerCertificate(socket);
    if (!certificate) {
      throw new TokenError('access token is bound to a client certificate, and the request presented none');
    }
    if (certificateThumbprint(certificate) !== bound) {
      throw new TokenError('access token is bound to another client certificate than the one presented');
    }
  }

  function challenge(extra = '') {
    return `Bearer ${extra}resource_metadata="${resourceMetadataUrl}"`;
  }

  const tools = [
    {
      name: 'whoami',
      description: 'Returns the subject, client id and scopes of the access token used, and whether it is bound to a client certificate.',
      inputSchema: { type: 'object', properties: {} },
    },
    {
      name: 'echo',
      description: 'Echoes its text argument.',
      inputSchema: { type: 'object', properties: { text: { type: 'string' } }, required: ['text'] },
    },
  ];

  function answer(message, claims) {
    const { id, method, params } = message;
    const ok = (result) => ({ jsonrpc: '2.0', id, result });
    const fail = (code, text) => ({ jsonrpc: '2.0', id: id ?? null, error: { code, message: text } });
    if (message.jsonrpc !== '2.0' || typeof method !== 'string') return fail(-32600, 'invalid request');
    const isNotification = !('id' in message);
    if (isNotification) return undefined;
    switch (method) {
      case 'initialize':
        return ok({
          protocolVersion: params?.protocolVersion ?? '2025-06-18',
          capabilities: { tools: { listChanged: false } },
          serverInfo: { name: 'interop-oidc-mcp', version: '1.0.0' },
        });
      case 'ping':
        return ok({});
      case 'tools/list':
        return ok({ tools });
      case 'tools/call': {
        if (params?.name === 'whoami') {
          const text = JSON.stringify({
            sub: claims.sub,
            client_id: claims.client_id,
            scope: claims.scope ?? '',
            certificateBound: claims.cnf?.['x5t#S256'] !== undefined,
          });
          return ok({ content: [{ type: 'text', text }] });
        }
        if (params?.name === 'echo') {
          return ok({ content: [{ type: 'text', text: String(params?.arguments?.text ?? '') }] });
        }
        return fail(-32602, `unknown tool ${params?.name}`);
      }
      default:
        return fail(-32601, `method not found: ${method}`);
    }
  }

  async function handle(req, res) {
    const url = new URL(req.url, origin);
    if (url.pathname === prmPath) {
      if (req.method !== 'GET') return sendText(res, 405, 'method not allowed', { allow: 'GET' });
      return sendJson(res, 200, {
        resource,
        authorization_servers: [issuer],
        scopes_supported: scopesSupported,
        bearer_methods_supported: ['header'],
        resource_name: 'interop MCP resource (oidc-provider)',
        ...(certificateBoundTokens ? { tls_client_certificate_bound_access_tokens: true } : {}),
      });
    }
    if (url.pathname !== '/mcp') return sendText(res, 404, 'not found');

    const authorization = req.headers.authorization ?? '';
    const match = /^Bearer\s+(\S+)$/i.exec(authorization);
    if (!match) {
      return sendJson(res, 401, { error: 'unauthorized', error_description: 'bearer token required' }, {
        'www-authenticate': challenge(),
      });
    }
    let claims;
    try {
      claims = await verify(match[1]);
      checkCertificateBinding(claims, req.socket);
    } catch (error) {
      const description = error instanceof TokenError ? error.message : 'access token could not be checked';
      return sendJson(res, 401, { error: 'invalid_token', error_description: description }, {
        'www-authenticate': challenge(`error="invalid_token", error_description="${description}", `),
      });
    }
    const granted = new Set(String(claims.scope ?? '').split(' ').filter(Boolean));
    const missing = requiredScopes.filter((scope) => !granted.has(scope));
    if (missing.length > 0) {
      const scope = [...new Set([...granted, ...requiredScopes])].join(' ');
      return sendJson(res, 403, { error: 'insufficient_scope' }, {
        'www-authenticate': challenge(`error="insufficient_scope", scope="${scope}", `),
      });
    }

    if (req.method !== 'POST') return sendText(res, 405, 'method not allowed', { allow: 'POST' });
    let body;
    try {
      body = JSON.parse(await readBody(req));
    } catch {
      return sendJson(res, 400, { jsonrpc: '2.0', id: null, error: { code: -32700, message: 'parse error' } });
    }
    const batch = Array.isArray(body);
    const replies = (batch ? body : [body]).map((message) => answer(message ?? {}, claims)).filter(Boolean);
    if (replies.length === 0) {
      res.writeHead(202);
      return res.end();
    }
    return sendJson(res, 200, batch ? replies : replies[0]);
  }

  return { handle, resource, resourceMetadataUrl };
}
