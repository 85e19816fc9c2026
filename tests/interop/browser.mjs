#!/usr/bin/env node
// A headless "browser" for OAuth tests: follows the authorization server's redirects while
// keeping cookies (oidc-provider needs them across its 303s), stops at the first redirect to
// a loopback URL on another origin than the authorization server (the client's callback),
// then GETs that callback once.
//
// CLI:  node browser.mjs [--no-callback] <authorization-url>
//   prints one JSON line {status, finalUrl, body} and exits 0 when the callback was reached
//   (whatever its status); with --no-callback it prints {status: null, finalUrl} without
//   calling the callback. Otherwise it prints {error, status, finalUrl, body} and exits 1.
// Module: import { browse } from './browser.mjs'

import { pathToFileURL } from 'node:url';
import { isLoopbackHost } from './lib/common.mjs';

const MAX_REDIRECTS = 20;
const REQUEST_TIMEOUT_MS = 10_000;
const BODY_LIMIT = 4000;

/** A minimal cookie jar: host-only cookies, path-prefix matching, Max-Age=0 / past Expires delete. */
export class CookieJar {
  #cookies = [];

  store(url, setCookieHeaders) {
    for (const header of setCookieHeaders) {
      const [pair, ...attributes] = header.split(';');
      const eq = pair.indexOf('=');
      if (eq <= 0) continue;
      const name = pair.slice(0, eq).trim();
      const value = pair.slice(eq + 1).trim();
      let path = url.pathname.replace(/\/[^/]*$/, '') || '/';
      let expired = false;
      for (const attribute of attributes) {
        const [key, ...rest] = attribute.trim().split('=');
        const attrValue = rest.join('=');
        switch (key.toLowerCase()) {
          case 'path':
            path = attrValue || '/';
            break;
          case 'max-age':
            if (Number(attrValue) <= 0) expired = true;
            break;
          case 'expires':
            if (Date.parse(attrValue) <= Date.now()) expired = true;
            break;
          default:
            break;
        }
      }
      this.#cookies = this.#cookies.filter((c) => !(c.host === url.host && c.name === name && c.path === path));
      if (!expired) this.#cookies.push({ host: url.host, name, value, path });
    }
  }

  header(url) {
    const matching = this.#cookies.filter((c) => c.host === url.host
      && (url.pathname === c.path || url.pathname.startsWith(c.path.endsWith('/') ? c.path : `${c.path}/`)));
    return matching.map((c) => `${c.name}=${c.value}`).join('; ');
  }
}

async function get(url, jar) {
  const headers = { accept: 'text/html,application/json;q=0.9,*/*;q=0.8', 'user-agent': 'interop-browser/1' };
  const cookie = jar.header(url);
  if (cookie) headers.cookie = cookie;
  const response = await fetch(url, {
    redirect: 'manual',
    headers,
    signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
  });
  jar.store(url, response.headers.getSetCookie());
  return response;
}

async function bodyText(response) {
  const text = await response.text().catch(() => '');
  return text.length > BODY_LIMIT ? `${text.slice(0, BODY_LIMIT)}...` : text;
}

/**
 * Drives an authorization URL to the client's loopback callback.
 * @param {string} authorizationUrl
 * @param {{callCallback?: boolean}} [options]
 * @returns {Promise<{status: number|null, finalUrl: string, body?: string, error?: string}>}
 */
export async function browse(authorizationUrl, { callCallback = true } = {}) {
  const jar = new CookieJar();
  let url = new URL(authorizationUrl);
  const serverOrigin = url.origin;
  for (let hop = 0; hop <= MAX_REDIRECTS; hop += 1) {
    const response = await get(url, jar);
    const location = response.headers.get('location');
    if (response.status < 300 || response.status >= 400 || !location) {
      return {
        error: `stopped at ${response.status} without reaching a loopback callback`,
        status: response.status,
        finalUrl: url.href,
        body: await bodyText(response),
      };
    }
    await response.body?.cancel();
    const next = new URL(location, url);
    if (isLoopbackHost(next.hostname) && next.origin !== serverOrigin && next.protocol === 'http:') {
      if (!callCallback) return { status: null, finalUrl: next.href };
      const callback = await get(next, jar);
      return { status: callback.status, finalUrl: next.href, body: await bodyText(callback) };
    }
    url = next;
  }
  return { error: `more than ${MAX_REDIRECTS} redirects`, status: null, finalUrl: url.href };
}

async function main(argv) {
  const callCallback = !argv.includes('--no-callback');
  const positional = argv.filter((arg) => !arg.startsWith('--'));
  if (positional.length !== 1) {
    process.stderr.write('usage: node browser.mjs [--no-callback] <authorization-url>\n');
    return 2;
  }
  let result;
  try {
    result = await browse(positional[0], { callCallback });
  } catch (error) {
    result = { error: `request failed: ${error.cause?.message ?? error.message}`, status: null, finalUrl: positional[0] };
  }
  process.stdout.write(`${JSON.stringify(result)}\n`);
  return result.error ? 1 : 0;
}

if (import.meta.url === pathToFileURL(process.argv[1]).href) {
  process.exitCode = await main(process.argv.slice(2));
}
