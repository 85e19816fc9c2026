#!/usr/bin/env node
// Drives Debian's Chromium (/usr/bin/chromium, headless, through puppeteer-core) as the person
// logging in, for app-server/tests/suite/browser_pages.rs. One browser for the whole run; each
// command gets a fresh incognito context unless it continues a held page.
//
// Reads one JSON command per line on stdin and answers one JSON line on stdout:
//   {cmd:"login", url, then:"approve"|"deny"|"hold", shot}  sign in on the authorization
//       server's own forms; approve on its consent form, deny with its "[ Cancel ]" link, or
//       hold at the consent form (see "continue")
//   {cmd:"continue", shot}   approve on the held consent form
//   {cmd:"visit", url, shot} open a URL
//   {cmd:"attack", callback, shot}  a page on another origin fires requests at the callback
//       URL (images, fetches, a form post, a frame) and reports what it could see
// A page answer: {status, url, title, heading, text, csp, frameOptions, cacheControl,
// scripts, shot}; an error: {error}. Logs go to stderr. Exits when stdin closes.

import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import readline from 'node:readline';
import puppeteer from 'puppeteer-core';

const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const STEP_TIMEOUT_MS = 20_000;

const userDataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'mcp-browser-pages-'));
const browser = await puppeteer.launch({
  executablePath: CHROMIUM,
  headless: true,
  userDataDir,
  // Over a pipe, Chromium quits when this process goes, however it goes (the test kills it
  // when it is dropped): no browser outlives its test run.
  pipe: true,
  args: [
    '--no-sandbox',
    '--disable-gpu',
    '--disable-quic',
    '--no-first-run',
    '--disable-background-networking',
    '--disable-component-update',
    '--disable-sync',
    '--no-proxy-server',
    '--disable-dev-shm-usage',
  ],
});
let held = null;

function cleanup() {
  browser.close().catch(() => {}).finally(() => {
    fs.rmSync(userDataDir, { recursive: true, force: true });
  });
}

/** What the person sees, and the headers of the page's own response. */
async function report(page, response, shot) {
  const url = new URL(page.url());
  const headers = response ? response.headers() : {};
  const seen = await page.evaluate(() => ({
    title: document.title,
    heading: document.querySelector('h1')?.innerText ?? '',
    text: document.body?.innerText ?? '',
    scripts: document.scripts.length,
  }));
  if (shot) {
    fs.mkdirSync(path.dirname(shot), { recursive: true });
    await page.screenshot({ path: shot, fullPage: true });
  }
  return {
    status: response ? response.status() : null,
    url: `${url.origin}${url.pathname}`,
    ...seen,
    csp: headers['content-security-policy'] ?? null,
    frameOptions: headers['x-frame-options'] ?? null,
    cacheControl: headers['cache-control'] ?? null,
    shot: shot ?? null,
  };
}

async function freshPage() {
  const context = await browser.createBrowserContext();
  const page = await context.newPage();
  page.setDefaultTimeout(STEP_TIMEOUT_MS);
  return page;
}

async function navigateBy(page, action) {
  const [response] = await Promise.all([
    page.waitForNavigation({ waitUntil: 'load', timeout: STEP_TIMEOUT_MS }),
    action(),
  ]);
  return response;
}

async function login({ url, then, shot }) {
  const page = await freshPage();
  await page.goto(url, { waitUntil: 'load' });
  await page.waitForSelector('input[name=login]');
  if (then === 'deny') {
    const response = await navigateBy(page, () => page.click('a[href*="/abort"]'));
    return report(page, response, shot);
  }
  await page.type('input[name=login]', 'person@example.test');
  await page.type('input[name=password]', 'any password');
  await navigateBy(page, () => page.click('button[type=submit]'));
  await page.waitForSelector('button[type=submit]');
  if (then === 'hold') {
    held = page;
    return { held: true, url: new URL(page.url()).pathname };
  }
  return approve(page, shot);
}

async function approve(page, shot) {
  const response = await navigateBy(page, () => page.click('button[type=submit]'));
  return report(page, response, shot);
}

async function resume({ shot }) {
  if (!held) throw new Error('no page is held at a consent form');
  const page = held;
  held = null;
  return approve(page, shot);
}

async function visit({ url, shot }) {
  const page = await freshPage();
  const response = await page.goto(url, { waitUntil: 'load' });
  return report(page, response, shot);
}

/** A page on another origin (http://localhost:<port>) that goes at the callback URL. */
async function attack({ callback, shot }) {
  const target = new URL(callback);
  const forged = `${target.origin}${target.pathname}?code=forged-code&state=forged-state`;
  const html = `<!doctype html><title>Another site</title><h1>Another site</h1>
<img src="${forged}"><img src="${target.origin}${target.pathname}?code=forged-code">
<iframe name="sink" style="display:none"></iframe>
<form id="f" method="post" action="${forged}" target="sink"><input name="code" value="x"></form>
<iframe id="framed" src="${target.origin}${target.pathname}"></iframe>
<script>
window.fired = 0;
const shots = [
  fetch(${JSON.stringify(forged)}, { mode: 'no-cors' }),
  fetch(${JSON.stringify(forged)}, { mode: 'no-cors', method: 'POST', body: 'code=x&state=y' }),
  fetch(${JSON.stringify(forged)}, { mode: 'cors' }),
  fetch(${JSON.stringify(`${target.origin}/`)}, { mode: 'no-cors' }),
];
document.getElementById('f').submit();
Promise.allSettled(shots).then((results) => {
  window.fired = results.length + 4;
  window.readable = results.filter((r) => r.status === 'fulfilled' && r.value.type !== 'opaque').length;
});
</script>`;
  const server = http.createServer((_req, res) => {
    res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
    res.end(html);
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const page = await freshPage();
  try {
    const response = await page.goto(`http://localhost:${server.address().port}/`, { waitUntil: 'load' });
    await page.waitForFunction(() => window.fired > 0, { timeout: STEP_TIMEOUT_MS });
    const { fired, readable } = await page.evaluate(() => ({ fired: window.fired, readable: window.readable }));
    // What the frame of the callback page shows: nothing of it when framing is refused.
    let framedText = '';
    for (const frame of page.frames()) {
      if (frame === page.mainFrame()) continue;
      try {
        framedText += await frame.evaluate(() => document.body?.innerText ?? '');
      } catch (error) {
        framedText += '';
      }
    }
    const seen = await report(page, response, shot);
    return { ...seen, fired, readable, framedText };
  } finally {
    server.close();
  }
}

const commands = { login, continue: resume, visit, attack };
const version = await browser.version();
// Created right before it is iterated: lines read in between would be lost.
const lines = readline.createInterface({ input: process.stdin });
process.stdout.write(`${JSON.stringify({ ready: true, version })}\n`);
for await (const line of lines) {
  if (!line.trim()) continue;
  let answer;
  try {
    const command = JSON.parse(line);
    const run = commands[command.cmd];
    if (!run) throw new Error(`unknown command ${command.cmd}`);
    answer = await run(command);
  } catch (error) {
    answer = { error: String(error?.stack ?? error) };
  }
  process.stdout.write(`${JSON.stringify(answer)}\n`);
}
cleanup();
