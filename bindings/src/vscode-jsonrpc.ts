// The client over a vscode-jsonrpc `MessageConnection`, for extensions that already have one.
// vscode-jsonrpc is not imported: this adapter needs only the few members below, which every
// version from 8 on has, so the package has no dependency on it (an optional peer).

import type { Channel, Disposable, RequestOptions } from "./client-base.js";
import { DEFAULT_REQUEST_TIMEOUT_MS } from "./connection.js";
import { ClientError, McpAppServerError } from "./errors.js";
import type { ErrorKind } from "./generated/index.js";
import { McpAppServerClient } from "./generated/client.js";
import { NOTIFICATION_METHODS } from "./generated/methods.js";

/** The part of vscode-jsonrpc's `MessageConnection` the adapter uses. */
export interface MessageConnectionLike {
  sendRequest<R>(method: string, params: unknown): Promise<R>;
  sendNotification(method: string, params?: unknown): Promise<void>;
  onNotification(method: string, handler: (params: any) => void): Disposable;
  onClose(listener: () => void): Disposable;
  dispose(): void;
}

/** Settings of `fromMessageConnection`. */
export interface MessageConnectionOptions {
  /** Default timeout of every request in milliseconds (default 60 000; 0 waits forever). */
  requestTimeoutMs?: number;
  /** Whether `dispose()` also disposes the connection (default true). */
  disposeConnection?: boolean;
}

// vscode-jsonrpc's own codes for "no answer will come" (write/read failure, connection
// disposed or inactive), and its ConnectionError codes (closed, disposed, already listening).
const CONNECTION_FAILURE_CODES = new Set([-32099, -32098, -32097, -32096, 1, 2, 3]);

function toError(method: string, error: unknown): Error {
  if (typeof error === "object" && error !== null) {
    const { code, message, data } = error as { code?: unknown; message?: unknown; data?: unknown };
    const kind = (data as { kind?: ErrorKind } | undefined)?.kind;
    if (typeof code === "number" && typeof message === "string") {
      if (CONNECTION_FAILURE_CODES.has(code) && kind === undefined) {
        return new ClientError("closed", `${method}: ${message}`, { cause: error });
      }
      return new McpAppServerError(method, { code, message, ...(data === undefined ? {} : { data: data as never }) });
    }
  }
  return new ClientError("closed", `${method} failed: ${String(error)}`, { cause: error });
}

/**
 * A client over an existing vscode-jsonrpc connection to the daemon (Content-Length framing,
 * as vscode-jsonrpc speaks). Call `connection.listen()` yourself, before or after.
 */
export function fromMessageConnection(
  connection: MessageConnectionLike,
  options: MessageConnectionOptions = {},
): McpAppServerClient {
  const defaultTimeout = options.requestTimeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS;
  const notificationListeners = new Set<(method: string, params: unknown) => void>();
  const closeListeners = new Set<(error: ClientError) => void>();
  const pending = new Set<(error: ClientError) => void>();
  let closed: ClientError | undefined;

  const close = (error: ClientError) => {
    if (closed) return;
    closed = error;
    for (const reject of [...pending]) reject(error);
    for (const listener of [...closeListeners]) listener(error);
    closeListeners.clear();
    notificationListeners.clear();
    for (const registration of registrations) registration.dispose();
  };

  const registrations: Disposable[] = NOTIFICATION_METHODS.map((method) =>
    connection.onNotification(method, (params: unknown) => {
      for (const listener of [...notificationListeners]) listener(method, params);
    }),
  );
  registrations.push(connection.onClose(() => close(new ClientError("closed", "the connection to the daemon closed"))));

  const channel: Channel = {
    request(method: string, params: unknown, requestOptions: RequestOptions = {}) {
      if (closed) return Promise.reject(closed);
      const { signal } = requestOptions;
      const timeoutMs = requestOptions.timeoutMs ?? defaultTimeout;
      return new Promise((resolve, reject) => {
        let timer: NodeJS.Timeout | undefined;
        const onAbort = () => fail(new ClientError("aborted", `${method} was aborted`, { cause: signal?.reason }));
        const done = () => {
          pending.delete(fail);
          if (timer) clearTimeout(timer);
          signal?.removeEventListener("abort", onAbort);
        };
        function fail(error: Error) {
          done();
          reject(error);
        }
        if (signal?.aborted) return onAbort();
        pending.add(fail);
        if (timeoutMs > 0) {
          timer = setTimeout(() => fail(new ClientError("timeout", `${method} got no answer within ${timeoutMs} ms`)), timeoutMs);
        }
        signal?.addEventListener("abort", onAbort, { once: true });
        let sent: Promise<unknown>;
        try {
          sent = connection.sendRequest(method, params);
        } catch (error) {
          return fail(toError(method, error));
        }
        sent.then(
          (result) => {
            done();
            resolve(result);
          },
          (error: unknown) => fail(toError(method, error)),
        );
      });
    },
    async notify(method: string, params?: unknown) {
      if (closed) throw closed;
      // vscode-jsonrpc would send an absent params as `[null]`.
      await (params === undefined ? connection.sendNotification(method) : connection.sendNotification(method, params));
    },
    onNotification(listener) {
      notificationListeners.add(listener);
      return { dispose: () => void notificationListeners.delete(listener) };
    },
    onClose(listener) {
      const already = closed;
      if (already) {
        queueMicrotask(() => listener(already));
        return { dispose: () => {} };
      }
      closeListeners.add(listener);
      return { dispose: () => void closeListeners.delete(listener) };
    },
    async dispose() {
      close(new ClientError("disposed", "the client was disposed"));
      if (options.disposeConnection ?? true) connection.dispose();
    },
  };
  return new McpAppServerClient(channel);
}
