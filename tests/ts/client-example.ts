// A tiny typed client over the generated bindings. It is only type-checked (tsc --noEmit):
// if the bindings stop describing the protocol the way frontends use it, CI fails here.
// Lines marked @ts-expect-error must stay errors; tsc fails if one starts compiling.

import type {
  ClientRequestMap,
  ClientRequestMethod,
  ErrorKind,
  ErrorKindCodes,
  JsonRpcResponse,
  JsonRpcServerNotification,
  McpServerStatus,
  ServerNotificationMap,
  ServerNotificationMethod,
} from "../../bindings/src/generated/index.ts";

/** Whatever carries framed messages to the daemon's stdin. */
export interface Transport {
  send(message: string): void;
}

export class RpcError extends Error {
  constructor(
    message: string,
    readonly code: number,
    readonly kind: ErrorKind | undefined,
  ) {
    super(message);
  }
}

type Listener<M extends ServerNotificationMethod> = (params: ServerNotificationMap[M]["params"]) => void;

export class ProtocolClient {
  #nextId = 1;
  #pending = new Map<number, (reply: JsonRpcResponse) => void>();
  #listeners = new Map<ServerNotificationMethod, Array<(params: unknown) => void>>();

  constructor(private readonly transport: Transport) {}

  request<M extends ClientRequestMethod>(
    method: M,
    params: ClientRequestMap[M]["params"],
  ): Promise<ClientRequestMap[M]["result"]> {
    const id = this.#nextId++;
    this.transport.send(JSON.stringify({ jsonrpc: "2.0", id, method, params }));
    return new Promise((resolve, reject) => {
      this.#pending.set(id, (reply) => {
        if ("error" in reply) {
          reject(new RpcError(reply.error.message, reply.error.code, reply.error.data?.kind));
        } else {
          resolve(reply.result as ClientRequestMap[M]["result"]);
        }
      });
    });
  }

  on<M extends ServerNotificationMethod>(method: M, listener: Listener<M>): void {
    const list = this.#listeners.get(method) ?? [];
    list.push(listener as (params: unknown) => void);
    this.#listeners.set(method, list);
  }

  /** Feed one parsed message from the daemon's stdout. */
  receive(message: JsonRpcResponse | JsonRpcServerNotification): void {
    if ("method" in message) {
      for (const listener of this.#listeners.get(message.method) ?? []) listener(message.params);
      return;
    }
    if (typeof message.id === "number") {
      this.#pending.get(message.id)?.(message);
      this.#pending.delete(message.id);
    }
  }
}

function describe(n: JsonRpcServerNotification): string {
  switch (n.method) {
    case "mcpServer/oauthLogin/completed":
      return n.params.success ? `${n.params.name}: logged in` : `${n.params.name}: ${n.params.errorKind ?? "failed"}`;
    case "mcpServer/oauthLogin/restarted":
      return `open ${n.params.authorizationUrl} (${n.params.reason})`;
    case "mcpServer/authStatus/changed":
      return `${n.params.name} is now ${n.params.authStatus}`;
    default:
      return "unknown notification";
  }
}

export async function loginFlow(client: ProtocolClient, openBrowser: (url: string) => void): Promise<string> {
  const init = await client.request("initialize", {
    clientInfo: { name: "example-ide", title: null, version: "1.0.0" },
    capabilities: { optOutNotificationMethods: ["mcpServer/authStatus/changed"] },
  });
  const methods: string[] = init.methods;

  const servers: McpServerStatus[] = (await client.request("mcpServerStatus/list", { limit: 50, cursor: null })).data;
  const target = servers.find((s) => s.authStatus === "notLoggedIn" && s.transport === "streamableHttp");
  if (target === undefined) return `nothing to log in to (${methods.length} methods)`;

  client.on("mcpServer/oauthLogin/restarted", (p) => openBrowser(p.authorizationUrl));
  const done = new Promise<string>((resolve) =>
    client.on("mcpServer/oauthLogin/completed", (p) => resolve(describe({ jsonrpc: "2.0", method: "mcpServer/oauthLogin/completed", params: p }))),
  );
  const started = await client.request("mcpServer/oauth/login", {
    name: target.name,
    clientRegistration: "auto",
    timeoutSecs: 300,
  });
  // `direct` for a login that needs no browser (a client credentials or workload identity
  // grant): the tokens are already stored.
  if (started.flow === "browser") openBrowser(started.authorizationUrl);
  const outcome = await done;

  const token = await client.request("mcpServer/oauth/token", { name: target.name, minValiditySecs: 60 });
  const expiresAt: number | undefined = token.expiresAt;
  await client.request("config/mcpServer/reload", {});
  return `${outcome}; token expires at ${expiresAt ?? "never"}`;
}

// The MCP server refused a request: tell the daemon and switch on what it answers.
export async function afterRefusal(
  client: ProtocolClient,
  name: string,
  response: { status: number; headers: { get(name: string): string | null } },
  openBrowser: (url: string) => void,
  dpopHeader?: (proof: string) => void,
): Promise<string | undefined> {
  const answer = await client.request("mcpServer/oauth/challenge", {
    name,
    status: response.status,
    wwwAuthenticate: response.headers.get("www-authenticate") ?? "",
  });
  switch (answer.action) {
    case "token":
      return `${answer.tokenType} ${answer.accessToken}`;
    case "dpopProof":
      // The server wants its DPoP nonce: the retry carries this proof in its `DPoP` header.
      dpopHeader?.(answer.proof);
      return `${answer.tokenType} ${answer.accessToken}`;
    case "login":
      // A step-up: mcpServer/oauthLogin/completed follows, then mcpServer/oauth/token.
      openBrowser(answer.authorizationUrl);
      return undefined;
    case "reauthenticationRequired": {
      // @ts-expect-error only the `token` answer carries a token
      void answer.accessToken;
      const again = await client.request("mcpServer/oauth/login", { name });
      if (again.grant === "authorizationCode") openBrowser(again.authorizationUrl);
      return undefined;
    }
    default: {
      const unhandled: never = answer;
      return unhandled;
    }
  }
}

// Compile-time checks of the bindings' shape.
export function mistakes(client: ProtocolClient): void {
  // @ts-expect-error unknown method
  void client.request("mcpServer/oauth/nope", {});
  // @ts-expect-error `name` is required
  void client.request("mcpServer/oauth/login", {});
  // @ts-expect-error not a registration mode
  void client.request("mcpServer/oauth/login", { name: "a", clientRegistration: "magic" });
  // @ts-expect-error integers are numbers, never bigint
  void client.request("mcpServer/oauth/token", { name: "a", minValiditySecs: 60n });
  // @ts-expect-error results are typed per method
  void client.request("mcpServer/oauth/cancel", { name: "a" }).then((r): string => r.cancelled);
  // @ts-expect-error params of a notification are typed per method
  client.on("mcpServer/authStatus/changed", (p) => p.authorizationUrl);
}

// Every error kind has a code.
export type EveryKindHasACode = ErrorKindCodes[ErrorKind];
export const notFound: EveryKindHasACode = -32010 satisfies ErrorKindCodes["serverNotFound"];
