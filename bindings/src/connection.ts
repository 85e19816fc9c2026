// JSON-RPC over a pair of Node streams: ids, pending requests with timeouts, notification
// dispatch, and an orderly end. Framing is in framing.ts; spawning the daemon in spawn.ts.

import type { Readable, Writable } from "node:stream";
import type { Channel, Disposable, RequestOptions } from "./client-base.js";
import { ClientError, McpAppServerError } from "./errors.js";
import { DEFAULT_MAX_MESSAGE_BYTES, FrameDecoder, FramingError, encodeMessage, type Framing } from "./framing.js";
import type { JsonRpcError } from "./generated/index.js";

/** Settings of a stream connection. */
export interface StreamOptions {
  /** Default `"content-length"`; the daemon answers in whichever the client uses. */
  framing?: Framing;
  /** Default timeout of every request in milliseconds (default 60 000; 0 waits forever). */
  requestTimeoutMs?: number;
  /** Largest message accepted from the daemon (default 16 MiB). */
  maxMessageBytes?: number;
  /**
   * Sees every message, both ways, as it passes (for protocol logs and tests). Messages carry
   * access tokens: never write them anywhere persistent. Exceptions thrown here are ignored.
   */
  trace?: (direction: "send" | "receive", message: unknown) => void;
}

export const DEFAULT_REQUEST_TIMEOUT_MS = 60_000;

interface Pending {
  method: string;
  resolve(result: unknown): void;
  reject(error: Error): void;
}

type Message = Record<string, unknown>;

const isObject = (value: unknown): value is Message =>
  typeof value === "object" && value !== null && !Array.isArray(value);

function asJsonRpcError(value: unknown): JsonRpcError {
  if (isObject(value) && typeof value.code === "number" && typeof value.message === "string") {
    return value as unknown as JsonRpcError;
  }
  return { code: -32603, message: `malformed error reply: ${JSON.stringify(value)}` };
}

/** A `Channel` over a readable (the daemon's stdout) and a writable (its stdin). */
export class StreamChannel implements Channel {
  readonly #writable: Writable;
  readonly #framing: Framing;
  readonly #timeoutMs: number;
  readonly #trace: StreamOptions["trace"];
  readonly #decoder: FrameDecoder;
  readonly #pending = new Map<number, Pending>();
  readonly #notificationListeners = new Set<(method: string, params: unknown) => void>();
  readonly #closeListeners = new Set<(error: ClientError) => void>();
  readonly #detach: () => void;
  #nextId = 1;
  #closed: ClientError | undefined;

  constructor(readable: Readable, writable: Writable, options: StreamOptions = {}) {
    this.#writable = writable;
    this.#framing = options.framing ?? "content-length";
    this.#timeoutMs = options.requestTimeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS;
    this.#trace = options.trace;
    this.#decoder = new FrameDecoder(this.#framing, options.maxMessageBytes ?? DEFAULT_MAX_MESSAGE_BYTES);

    const onData = (chunk: Buffer | string) => this.#onData(typeof chunk === "string" ? Buffer.from(chunk) : chunk);
    const onEnd = () => this.close(new ClientError("closed", "the daemon closed its output (did it exit?)"));
    const onReadError = (error: Error) =>
      this.close(new ClientError("closed", `reading from the daemon failed: ${error.message}`, { cause: error }));
    const onWriteError = (error: Error) =>
      this.close(new ClientError("closed", `writing to the daemon failed: ${error.message}`, { cause: error }));
    readable.on("data", onData);
    readable.on("end", onEnd);
    readable.on("close", onEnd);
    readable.on("error", onReadError);
    writable.on("error", onWriteError);
    this.#detach = () => {
      readable.off("data", onData);
      readable.off("end", onEnd);
      readable.off("close", onEnd);
      // Errors after the end are nobody's business, but must not crash the process either.
      readable.off("error", onReadError).on("error", () => {});
      writable.off("error", onWriteError).on("error", () => {});
    };
  }

  request(method: string, params: unknown, options: RequestOptions = {}): Promise<unknown> {
    if (this.#closed) return Promise.reject(this.#closed);
    const { signal } = options;
    if (signal?.aborted) {
      return Promise.reject(new ClientError("aborted", `${method} was aborted before it was sent`, { cause: signal.reason }));
    }
    const id = this.#nextId++;
    const timeoutMs = options.timeoutMs ?? this.#timeoutMs;
    return new Promise((resolve, reject) => {
      let timer: NodeJS.Timeout | undefined;
      const onAbort = () =>
        settle(() => reject(new ClientError("aborted", `${method} was aborted`, { cause: signal?.reason })));
      const settle = (action: () => void) => {
        if (!this.#pending.delete(id)) return;
        if (timer) clearTimeout(timer);
        signal?.removeEventListener("abort", onAbort);
        action();
      };
      this.#pending.set(id, {
        method,
        resolve: (result) => settle(() => resolve(result)),
        reject: (error) => settle(() => reject(error)),
      });
      if (timeoutMs > 0) {
        timer = setTimeout(
          () => settle(() => reject(new ClientError("timeout", `${method} got no answer within ${timeoutMs} ms`))),
          timeoutMs,
        );
      }
      signal?.addEventListener("abort", onAbort, { once: true });
      this.#send({ jsonrpc: "2.0", id, method, params });
    });
  }

  async notify(method: string, params?: unknown): Promise<void> {
    if (this.#closed) throw this.#closed;
    this.#send(params === undefined ? { jsonrpc: "2.0", method } : { jsonrpc: "2.0", method, params });
  }

  onNotification(listener: (method: string, params: unknown) => void): Disposable {
    this.#notificationListeners.add(listener);
    return { dispose: () => void this.#notificationListeners.delete(listener) };
  }

  onClose(listener: (error: ClientError) => void): Disposable {
    const closed = this.#closed;
    if (closed) {
      queueMicrotask(() => listener(closed));
      return { dispose: () => {} };
    }
    this.#closeListeners.add(listener);
    return { dispose: () => void this.#closeListeners.delete(listener) };
  }

  /** Ends the connection: rejects what is pending and closes the writable (the daemon's stdin). */
  async dispose(): Promise<void> {
    this.close(new ClientError("disposed", "the client was disposed"));
  }

  /** Ends the connection with `error` (first call wins). */
  close(error: ClientError): void {
    if (this.#closed) return;
    this.#closed = error;
    this.#detach();
    const pending = [...this.#pending.values()];
    for (const p of pending) p.reject(error);
    for (const listener of [...this.#closeListeners]) listener(error);
    this.#closeListeners.clear();
    this.#notificationListeners.clear();
    if (!this.#writable.writableEnded) this.#writable.end();
  }

  #send(message: Message): void {
    this.#observe("send", message);
    this.#writable.write(encodeMessage(message, this.#framing));
  }

  #observe(direction: "send" | "receive", message: unknown): void {
    if (!this.#trace) return;
    try {
      this.#trace(direction, message);
    } catch {
      // A tracer must not break the connection.
    }
  }

  #onData(chunk: Buffer): void {
    let messages: unknown[];
    try {
      messages = this.#decoder.push(chunk);
    } catch (error) {
      const why = error instanceof FramingError ? error.message : String(error);
      this.close(new ClientError("protocol", `the daemon sent something that is not JSON-RPC: ${why}`, { cause: error }));
      return;
    }
    for (const message of messages) {
      if (this.#closed) return;
      this.#observe("receive", message);
      for (const one of Array.isArray(message) ? message : [message]) this.#dispatch(one);
    }
  }

  #dispatch(message: unknown): void {
    if (!isObject(message)) return;
    const { id, method } = message;
    if (typeof method === "string") {
      if (id === undefined || id === null) {
        for (const listener of [...this.#notificationListeners]) {
          try {
            listener(method, message.params);
          } catch (error) {
            // Like an event handler's: surface it without breaking delivery to the others.
            queueMicrotask(() => {
              throw error;
            });
          }
        }
      } else {
        this.#send({ jsonrpc: "2.0", id, error: { code: -32601, message: `this client answers no requests (${method})` } });
      }
      return;
    }
    if (typeof id !== "number") return; // not one of ours: this client only sends numeric ids
    const pending = this.#pending.get(id);
    if (!pending) return; // timed out or aborted already
    if ("error" in message) pending.reject(new McpAppServerError(pending.method, asJsonRpcError(message.error)));
    else pending.resolve(message.result);
  }
}
