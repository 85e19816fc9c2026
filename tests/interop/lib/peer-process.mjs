// Starting a peer the way a test harness should: spawn, read the one JSON ready line from
// stdout, and stop it by PID with SIGTERM.

import { spawn } from 'node:child_process';

/**
 * @param {string} script path of oidc-server.mjs / sdk-server.mjs
 * @param {{args?: string[], env?: object, label?: string, timeoutMs?: number}} options
 * @returns {Promise<{ready: object, child: import('node:child_process').ChildProcess, stop: () => Promise<number|null>, stderr: () => string}>}
 */
export async function startPeer(script, { args = [], env = {}, label = script, timeoutMs = 30_000 } = {}) {
  const child = spawn(process.execPath, [script, ...args], {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  child.stderr.setEncoding('utf8');
  child.stderr.on('data', (chunk) => {
    stderr += chunk;
  });
  const exited = new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));

  const ready = await new Promise((resolve, reject) => {
    let stdout = '';
    const timer = setTimeout(() => reject(new Error(`${label}: no ready line within ${timeoutMs} ms\n${stderr}`)), timeoutMs);
    child.stdout.setEncoding('utf8');
    child.stdout.on('data', (chunk) => {
      stdout += chunk;
      const newline = stdout.indexOf('\n');
      if (newline === -1) return;
      clearTimeout(timer);
      try {
        resolve(JSON.parse(stdout.slice(0, newline)));
      } catch (error) {
        reject(new Error(`${label}: ready line is not JSON: ${stdout.slice(0, newline)} (${error.message})`));
      }
    });
    exited.then(({ code, signal }) => {
      clearTimeout(timer);
      reject(new Error(`${label}: exited (code ${code}, signal ${signal}) before its ready line\n${stderr}`));
    });
  });

  async function stop() {
    if (child.exitCode !== null || child.signalCode !== null) return child.exitCode;
    process.kill(child.pid, 'SIGTERM');
    const killer = setTimeout(() => child.kill('SIGKILL'), 5000);
    const { code } = await exited;
    clearTimeout(killer);
    return code;
  }

  return { ready, child, stop, stderr: () => stderr };
}
