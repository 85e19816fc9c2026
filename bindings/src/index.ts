// @mcp-app-server/protocol: the protocol's types and a typed client for mcp-app-server.

export type * from "./generated/index.js";
export { McpAppServerClient } from "./generated/client.js";
export { ERROR_KIND_CODES, ERROR_KINDS, NOTIFICATION_METHODS, PROTOCOL_VERSION, REQUEST_METHODS } from "./generated/methods.js";
export { ClientBase } from "./client-base.js";
export type { Channel, Disposable, RequestOptions, WaitOptions } from "./client-base.js";
export { ClientError, McpAppServerError } from "./errors.js";
export type { ClientErrorReason } from "./errors.js";
export { DEFAULT_MAX_MESSAGE_BYTES, FrameDecoder, FramingError, encodeMessage } from "./framing.js";
export type { Framing } from "./framing.js";
export { DEFAULT_REQUEST_TIMEOUT_MS, StreamChannel } from "./connection.js";
export type { StreamOptions } from "./connection.js";
export { SpawnedAppServerClient, connectStreams, spawnAppServer } from "./spawn.js";
export type { SpawnOptions } from "./spawn.js";
export { fromMessageConnection } from "./vscode-jsonrpc.js";
export type { MessageConnectionLike, MessageConnectionOptions } from "./vscode-jsonrpc.js";
