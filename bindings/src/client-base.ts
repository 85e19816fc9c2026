// What every client has, whatever carries its messages: typed requests and notification
// subscriptions over a `Channel`. The per-method wrappers are generated (generated/client.ts).

import { ClientError } from "./errors.js";
import type {
  ClientRequestMethod,
  ClientRequestParams,
  ClientRequestResult,
  ServerNotificationMethod,
  ServerNotificationParams,
} from "./generated/index.js";

/** Something to stop: a subscription, a listener. */
export interface Disposable {
  dispose(): void;
}

/** Per-request settings. */
export interface RequestOptions {
  /** Give up after this many milliseconds (default: the connection's `requestTimeoutMs`; 0 waits forever). */
  timeoutMs?: number;
  /** Give up when this fires. */
  signal?: AbortSignal;
}

/**
 * Carries JSON-RPC to the daemon and back: the built-in stream connection, or an adapter over
 * another JSON-RPC library. Implement it to run the client over anything else.
 */
export interface Channel {
  /** Sends a request and settles with its `result`, or rejects with `McpAppServerError` / `ClientError`. */
  request(method: string, params: unknown, options?: RequestOptions): Promise<unknown>;
  /** Sends a notification (no answer). */
  notify(method: string, params?: unknown): Promise<void>;
  /** Calls `listener` for every notification the daemon sends. */
  onNotification(listener: (method: string, params: unknown) => void): Disposable;
  /** Calls `listener` once when the connection ends, with why. */
  onClose(listener: (error: ClientError) => void): Disposable;
  /** Ends the connection: pending requests reject with reason `disposed`. */
  dispose(): Promise<void>;
}

/** Settings of `waitFor`. */
export interface WaitOptions {
  /** Give up after this many milliseconds (default: wait until the connection ends). */
  timeoutMs?: number;
  /** Give up when this fires. */
  signal?: AbortSignal;
}

/** The hand-written half of `McpAppServerClient`. */
export class ClientBase {
  readonly #channel: Channel;
  #disposing: Promise<void> | undefined;

  constructor(channel: Channel) {
    this.#channel = channel;
  }

  /** Sends request `method`, typed by the method table. The generated methods call this. */
  request<M extends ClientRequestMethod>(
    method: M,
    params: ClientRequestParams<M>,
    options?: RequestOptions,
  ): Promise<ClientRequestResult<M>> {
    return this.#channel.request(method, params, options) as Promise<ClientRequestResult<M>>;
  }

  /** Sends a notification, e.g. `initialized` after `initialize` (accepted, not required). */
  notify(method: string, params?: unknown): Promise<void> {
    return this.#channel.notify(method, params);
  }

  /** Calls `listener` with the params of every notification `method`; dispose the result to stop. */
  on<M extends ServerNotificationMethod>(
    method: M,
    listener: (params: ServerNotificationParams<M>) => void,
  ): Disposable {
    return this.#channel.onNotification((received, params) => {
      if (received === method) listener(params as ServerNotificationParams<M>);
    });
  }

  /**
   * The next notification `method` whose params pass `predicate`. Subscribe before sending
   * the request that causes it. Rejects with `ClientError` on timeout, abort or close.
   */
  waitFor<M extends ServerNotificationMethod>(
    method: M,
    predicate: (params: ServerNotificationParams<M>) => boolean = () => true,
    options: WaitOptions = {},
  ): Promise<ServerNotificationParams<M>> {
    return new Promise((resolve, reject) => {
      const cleanups: Array<() => void> = [];
      const finish = (settle: () => void) => {
        for (const cleanup of cleanups) cleanup();
        settle();
      };
      const fail = (error: ClientError) => finish(() => reject(error));
      const { signal, timeoutMs } = options;
      if (signal?.aborted) {
        reject(new ClientError("aborted", `stopped waiting for ${method}: aborted`, { cause: signal.reason }));
        return;
      }
      const subscription = this.on(method, (params) => {
        let matches: boolean;
        try {
          matches = predicate(params);
        } catch (error) {
          finish(() => reject(error));
          return;
        }
        if (matches) finish(() => resolve(params));
      });
      cleanups.push(() => subscription.dispose());
      const closed = this.#channel.onClose((error) =>
        fail(new ClientError(error.reason, `stopped waiting for ${method}: ${error.message}`, { cause: error })),
      );
      cleanups.push(() => closed.dispose());
      if (timeoutMs !== undefined && timeoutMs > 0) {
        const timer = setTimeout(
          () => fail(new ClientError("timeout", `no ${method} within ${timeoutMs} ms`)),
          timeoutMs,
        );
        cleanups.push(() => clearTimeout(timer));
      }
      if (signal) {
        const onAbort = () =>
          fail(new ClientError("aborted", `stopped waiting for ${method}: aborted`, { cause: signal.reason }));
        signal.addEventListener("abort", onAbort, { once: true });
        cleanups.push(() => signal.removeEventListener("abort", onAbort));
      }
    });
  }

  /** Calls `listener` once when the connection ends (daemon exit, stream error, `dispose()`). */
  onClose(listener: (error: ClientError) => void): Disposable {
    return this.#channel.onClose(listener);
  }

  /**
   * Ends the connection: pending requests and waits reject with reason `disposed`; a spawned
   * daemon is asked to exit (stdin closed) and killed if it does not. Safe to call twice.
   */
  dispose(): Promise<void> {
    this.#disposing ??= this.#channel.dispose();
    return this.#disposing;
  }
}
