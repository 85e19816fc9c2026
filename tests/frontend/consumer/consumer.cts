// The same package from CommonJS TypeScript (a .cts file compiles to require()): the
// "require" export condition must give declarations as complete as the ES module ones.

import { McpAppServerError, spawnAppServer, type OauthTokenResponse } from "@mcp-app-server/protocol";

export async function commonJsFrontend(bin: string): Promise<OauthTokenResponse | undefined> {
  const client = spawnAppServer({ bin });
  await client.initialize({ clientInfo: { name: "cjs-ide", version: "1" } });
  try {
    return await client.token({ name: "linear" });
  } catch (error) {
    if (error instanceof McpAppServerError && error.kind === "notLoggedIn") return undefined;
    throw error;
  } finally {
    await client.dispose();
  }
}

// @ts-expect-error `name` is required here too.
void spawnAppServer({ bin: "x" }).logout({});
