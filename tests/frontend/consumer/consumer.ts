// A frontend's TypeScript against the installed package, type-checked under `strict` (never
// run; frontend.test.mjs runs the same calls from plain JavaScript). Each @ts-expect-error
// line must stay an error: tsc fails if one starts compiling.

import { spawn } from "node:child_process";
import {
  ClientError,
  ERROR_KIND_CODES,
  McpAppServerError,
  NOTIFICATION_METHODS,
  connectStreams,
  fromMessageConnection,
  spawnAppServer,
  type ClientErrorReason,
  type ErrorKind,
  type McpAuthStatus,
  type McpAuthStatusReason,
  type McpServerStatus,
  type OauthLoginCompletedNotification,
  type OauthTokenResponse,
} from "@mcp-app-server/protocol";
import { StreamMessageReader, StreamMessageWriter, createMessageConnection } from "vscode-jsonrpc/node.js";

export async function frontend(bin: string, home: string): Promise<McpServerStatus[]> {
  const client = spawnAppServer({ bin, home, framing: "newline", requestTimeoutMs: 5_000, stderr: (text) => void text });
  const init = await client.initialize({ clientInfo: { name: "my-ide", version: "1.0.0" } });
  const methods: string[] = init.methods;
  const { data, nextCursor } = await client.listMcpServerStatus({ limit: 10 });
  const cursor: string | undefined = nextCursor;
  const status: McpAuthStatus | undefined = data[0]?.authStatus;
  const why: McpAuthStatusReason | undefined = data[0]?.reason;
  // @ts-expect-error a reason is one of the listed causes, not any string
  const notAReason: McpAuthStatusReason = "forgotten";
  void [why, notAReason];

  const completed = client.waitFor("mcpServer/oauthLogin/completed", (n) => n.name === "linear", { timeoutMs: 300_000 });
  const started = await client.login({ name: "linear", scopes: null, clientRegistration: "dcr" });
  const authorizationUrl: string | undefined = started.flow === "browser" ? started.authorizationUrl : undefined;
  const done: OauthLoginCompletedNotification = await completed;
  const kind: ErrorKind | undefined = done.errorKind;
  const subscription = client.onAuthStatusChanged(({ name, authStatus, reason }) => void [name, authStatus, reason === "tokenRevoked"]);
  subscription.dispose();
  client.onLoginRestarted((restart) => void restart.authorizationUrl.toUpperCase());

  let token: OauthTokenResponse | undefined;
  try {
    token = await client.token({ name: "linear", minValiditySecs: 120 }, { signal: AbortSignal.timeout(1000) });
  } catch (error) {
    if (error instanceof McpAppServerError && error.kind === "reauthenticationRequired") {
      const code: number = error.code;
      void code;
    } else if (error instanceof ClientError) {
      const reason: ClientErrorReason = error.reason;
      void reason;
    }
  }
  const expiresAt: number | undefined = token?.expiresAt;
  const code: -32010 = ERROR_KIND_CODES.serverNotFound;
  const first: "mcpServer/oauthLogin/completed" = NOTIFICATION_METHODS[0];

  // @ts-expect-error `name` is required.
  await client.login({});
  // @ts-expect-error `timeoutSecs` is a number.
  await client.login({ name: "linear", timeoutSecs: "60" });
  // @ts-expect-error unknown fields are refused by the daemon, and by the types.
  await client.logout({ name: "linear", revoke: true, everywhere: true });
  // @ts-expect-error no such method.
  await client.request("mcpServer/oauth/nope", {});
  // @ts-expect-error results are typed: `accessToken` is a string.
  const wrong: number = (await client.token({ name: "linear" })).accessToken;
  // @ts-expect-error notification params are typed.
  client.onLoginCompleted((n) => n.authorizationUrl);

  // The same client over an extension's own vscode-jsonrpc connection.
  const child = spawn(bin, [], { stdio: ["pipe", "pipe", "inherit"] });
  const connection = createMessageConnection(new StreamMessageReader(child.stdout), new StreamMessageWriter(child.stdin));
  connection.listen();
  const viaVscode = fromMessageConnection(connection, { requestTimeoutMs: 10_000 });
  await viaVscode.listMcpServerStatus();
  const viaStreams = connectStreams(child.stdout, child.stdin, { framing: "content-length" });
  await Promise.all([viaVscode.dispose(), viaStreams.dispose(), client.dispose()]);
  void [methods, cursor, status, authorizationUrl, kind, expiresAt, code, first, wrong];
  return data;
}

// The login of bindings/README.md, as written there.
declare function openInBrowser(url: string): void;
export async function readmeLogin(): Promise<string> {
  const client = spawnAppServer({ bin: "/path/to/mcp-app-server" });
  await client.initialize({ clientInfo: { name: "my-ide", version: "1.0.0" } });

  const completed = client.waitFor("mcpServer/oauthLogin/completed", (n) => n.name === "linear");
  const started = await client.login({ name: "linear" });
  if (started.flow === "browser") openInBrowser(started.authorizationUrl); // e.g. vscode.env.openExternal; "direct": no browser needed
  const done = await completed;
  if (!done.success) throw new Error(done.error);

  const { accessToken, tokenType } = await client.token({ name: "linear" });
  await client.dispose();
  return `${tokenType} ${accessToken}`;
}
