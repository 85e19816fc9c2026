// Builds the bindings/ package the way a frontend gets it: `npm pack` (whose prepack compiles
// it), then `npm install <tarball>` into an empty project.

import { execFileSync } from 'node:child_process';
import { mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';

const NPM_QUIET = ['--no-audit', '--no-fund', '--loglevel=error'];

function npm(args, cwd) {
  return execFileSync('npm', args, { cwd, encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });
}

/**
 * Packs `bindings/` into `work/` and installs the tarball (plus `extra` local packages) into
 * the empty project `work/app`. Returns the tarball's file list and the installed entry point.
 */
export function packAndInstall(root, work, extra = []) {
  const bindings = join(root, 'bindings');
  npm(['ci', ...NPM_QUIET], bindings);
  const [packed] = JSON.parse(npm(['pack', '--json', '--pack-destination', work, ...NPM_QUIET], bindings));
  const tarball = join(work, packed.filename);
  const app = join(work, 'app');
  mkdirSync(app);
  writeFileSync(join(app, 'package.json'), JSON.stringify({ name: 'frontend-under-test', private: true, type: 'module' }));
  npm(['install', ...NPM_QUIET, tarball, ...extra], app);
  const entry = createRequire(join(app, 'package.json')).resolve('@mcp-app-server/protocol');
  return {
    app,
    entry,
    files: packed.files.map((f) => f.path),
    installed: readdirSync(join(app, 'node_modules')),
  };
}
