// Plain CommonJS, as many VS Code extensions still are: require() the installed package and
// talk to the daemon. Prints every message it traces and a summary, one JSON line each.
// Usage (from the project the package is installed in): node require.cjs <bin> <home>

const { McpAppServerError, spawnAppServer } = require('@mcp-app-server/protocol');

const print = (value) => process.stdout.write(`${JSON.stringify(value)}\n`);

async function main([bin, home]) {
  const client = spawnAppServer({ bin, home, stderr: 'ignore', trace: (direction, message) => print({ direction, message }) });
  const init = await client.initialize({ clientInfo: { name: 'cjs-frontend', version: '1' } });
  const { data } = await client.listMcpServerStatus();
  const error = await client.logout({ name: 'nope' }).catch((e) => e);
  await client.dispose();
  print({
    summary: {
      daemon: init.serverInfo.name,
      servers: data.map((s) => s.name),
      kind: error.kind,
      typed: error instanceof McpAppServerError,
      exitCode: client.process.exitCode,
    },
  });
}

main(process.argv.slice(2)).catch((error) => {
  process.stderr.write(`${error.stack}\n`);
  process.exitCode = 1;
});
