// The third-party peers of tests/interop (oidc-provider, the MCP TypeScript SDK demo server),
// started the way app-server/tests/suite/interop.rs starts them, and the headless browser.

import { execFileSync, spawn } from 'node:child_process';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import { join } from 'node:path';

export function installInteropPeers(root) {
  execFileSync('bash', [join(root, '.ci', 'interop-setup.sh')], { stdio: ['ignore', 'ignore', 'inherit'] });
}

/** Starts `tests/interop/<script>`; resolves with its ready line once it serves. */
export async function startPeer(root, script, env = {}) {
  const child = spawn(process.execPath, [join(root, 'tests', 'interop', script), '--exit-with-stdin'], {
    env: { ...process.env, ...env },
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  let log = '';
  child.stderr.setEncoding('utf8').on('data', (text) => {
    if (log.length < 64 * 1024) log += text;
  });
  const lines = createInterface({ input: child.stdout });
  const first = once(lines, 'line');
  const exit = once(child, 'exit').then(([code]) => {
    throw new Error(`${script} exited (${code}) before it was ready:\n${log}`);
  });
  const timeout = new Promise((_, reject) => {
    setTimeout(() => reject(new Error(`${script} printed no ready line within 60 s:\n${log}`)), 60_000).unref();
  });
  const [line] = await Promise.race([first, exit, timeout]);
  exit.catch(() => {});
  return {
    ready: JSON.parse(line),
    log: () => log,
    async stop() {
      if (child.exitCode !== null) return child.exitCode;
      child.kill('SIGTERM');
      const [code] = await once(child, 'exit');
      return code;
    },
  };
}

export { browse } from '../../interop/browser.mjs';
