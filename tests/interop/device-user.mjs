#!/usr/bin/env node
// Plays the user of a device login (RFC 8628) at oidc-provider over plain HTTP: opens the
// verification URI with the code in it, submits the code form, confirms, and follows the
// redirects (with cookies) through the login and consent interactions, which
// oidc-server.mjs finishes by itself, to the provider's final page.
//
// CLI:  node device-user.mjs [--deny] <verification_uri_complete>
//   prints one JSON line {status, finalUrl, body} and exits 0 when the provider's final page
//   answered 200; otherwise prints {error, status, finalUrl, body} and exits 1. With --deny
//   the user aborts at the confirmation step instead.

import { pathToFileURL } from 'node:url';
import { CookieJar } from './browser.mjs';

const MAX_REDIRECTS = 20;
const REQUEST_TIMEOUT_MS = 10_000;
const BODY_LIMIT = 2000;

async function request(url, jar, form) {
  const headers = { accept: 'text/html', 'user-agent': 'interop-device-user/1' };
  const cookie = jar.header(url);
  if (cookie) headers.cookie = cookie;
  const init = { redirect: 'manual', headers, signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS) };
  if (form) {
    init.method = 'POST';
    headers['content-type'] = 'application/x-www-form-urlencoded';
    init.body = new URLSearchParams(form).toString();
  }
  const response = await fetch(url, init);
  jar.store(url, response.headers.getSetCookie());
  return response;
}

/** Follows redirects from `response` (GETs), answering the last response and its URL. */
async function follow(response, url, jar) {
  for (let hop = 0; hop <= MAX_REDIRECTS; hop += 1) {
    const location = response.headers.get('location');
    if (response.status < 300 || response.status >= 400 || !location) return { response, url };
    await response.body?.cancel();
    url = new URL(location, url);
    response = await request(url, jar);
  }
  throw new Error(`more than ${MAX_REDIRECTS} redirects`);
}

/** The hidden fields of the page's form (oidc-provider's form_post and device forms). */
function hiddenFields(html) {
  const fields = {};
  for (const [, name, value] of html.matchAll(/<input type="hidden" name="([^"]+)" value="([^"]*)"\s*\/?>/g)) {
    fields[name] = value;
  }
  return fields;
}

export async function approveDevice(verificationUriComplete, { deny = false } = {}) {
  const jar = new CookieJar();
  const start = new URL(verificationUriComplete);
  const action = new URL(start.pathname, start);
  // 1. The link with the code: a page that posts the code with the form's xsrf.
  let page = await request(start, jar);
  const codeForm = hiddenFields(await page.text());
  if (!codeForm.xsrf || !codeForm.user_code) {
    return { error: 'no code form at the verification URI', status: page.status, finalUrl: start.href };
  }
  // 2. The code submitted: the confirmation page.
  page = await request(action, jar, codeForm);
  const confirmBody = await page.text();
  const confirmForm = hiddenFields(confirmBody);
  if (confirmForm.confirm !== 'yes') {
    return { error: 'no confirmation form', status: page.status, finalUrl: action.href, body: confirmBody.slice(0, BODY_LIMIT) };
  }
  if (deny) {
    delete confirmForm.confirm;
    confirmForm.abort = 'yes';
  }
  // 3. Confirmed (or aborted): login and consent, then the provider's last page.
  page = await request(action, jar, confirmForm);
  const { response, url } = await follow(page, action, jar);
  const body = (await response.text()).slice(0, BODY_LIMIT);
  return { status: response.status, finalUrl: url.href, body };
}

async function main(argv) {
  const deny = argv.includes('--deny');
  const target = argv.find((a) => !a.startsWith('--'));
  if (!target) {
    console.error('usage: node device-user.mjs [--deny] <verification_uri_complete>');
    process.exit(2);
  }
  try {
    const result = await approveDevice(target, { deny });
    console.log(JSON.stringify(result));
    process.exit(result.status === 200 && !result.error ? 0 : 1);
  } catch (error) {
    console.log(JSON.stringify({ error: String(error?.message ?? error), status: null, finalUrl: target }));
    process.exit(1);
  }
}

if (import.meta.url === pathToFileURL(process.argv[1]).href) {
  await main(process.argv.slice(2));
}
