// The two ways a request fails: the daemon answered with an error, or no answer came.

import type { ErrorKind, JsonRpcError, JsonRpcErrorData } from "./generated/index.js";

/**
 * The daemon answered a request with a JSON-RPC error. Branch on `kind` (application errors,
 * codes -32000..-32099, always carry one) or `code`, never on `message`, which is for people.
 */
export class McpAppServerError extends Error {
  override readonly name = "McpAppServerError";
  /** A standard JSON-RPC code (-32700, -32600, -32601, -32602, -32603) or an application code. */
  readonly code: number;
  /** `error.data` as sent: `kind` and any details. */
  readonly data: JsonRpcErrorData | undefined;
  /** The request method that failed. */
  readonly method: string;

  constructor(method: string, error: JsonRpcError) {
    super(error.message);
    this.code = error.code;
    this.data = error.data;
    this.method = method;
  }

  /** `data.kind`, the stable machine-readable error kind (absent on standard JSON-RPC errors). */
  get kind(): ErrorKind | undefined {
    return this.data?.kind;
  }
}

/** Why a request got no answer. */
export type ClientErrorReason =
  /** No answer within the request's timeout. */
  | "timeout"
  /** The caller's `AbortSignal` fired. */
  | "aborted"
  /** The connection ended: the daemon exited, or a stream closed or failed. */
  | "closed"
  /** `dispose()` was called. */
  | "disposed"
  /** The daemon sent bytes that are not a framed JSON-RPC message; the connection was closed. */
  | "protocol";

/** A request, or a wait for a notification, ended without the daemon's answer. */
export class ClientError extends Error {
  override readonly name = "ClientError";

  constructor(
    readonly reason: ClientErrorReason,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}
