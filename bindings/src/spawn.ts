// Starting the daemon, or attaching to streams someone else set up.

import { spawn, type ChildProcess } from "node:child_process";
import type { Readable, Writable } from "node:stream";
import type { Channel } from "./client-base.js";
import { StreamChannel, type StreamOptions } from "./connection.js";
import { ClientError } from "./errors.js";
import { McpAppServerClient } from "./generated/client.js";

/** How to start the daemon. */
export interface SpawnOptions extends StreamOptions {
  /** Path of the `mcp-app-server` executable. */
  bin: string;
  /** Its home (config.toml, credentials): sets `MCP_APP_SERVER_HOME`. Default: the user's XDG dirs. */
  home?: string;
  /** Extra environment, over this process's; a value of `undefined` removes a variable. */
  env?: Record<string, string | undefined>;
  /** Arguments (default none: the daemon on stdio). */
  args?: string[];
  /** Working directory of the daemon. */
  cwd?: string;
  /**
   * The daemon's log (stderr, level set by `RUST_LOG`; it never contains secrets):
   * `"inherit"` (default), `"ignore"`, or a function called with each chunk of text.
   */
  stderr?: "inherit" | "ignore" | ((text: string) => void);
  /** On `dispose()`, how long to wait for the daemon to exit after its stdin closes before SIGTERM, then SIGKILL (default 5000 ms each). */
  exitTimeoutMs?: number;
}

/** A client whose daemon this process started. */
export class SpawnedAppServerClient extends McpAppServerClient {
  /** The daemon's process (its stdio belongs to the client). */
  readonly process: ChildProcess;

  constructor(channel: Channel, child: ChildProcess) {
    super(channel);
    this.process = child;
  }
}

function exited(child: ChildProcess): boolean {
  return child.exitCode !== null || child.signalCode !== null;
}

function waitForExit(child: ChildProcess, ms: number): Promise<boolean> {
  if (exited(child)) return Promise.resolve(true);
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      child.off("exit", onExit);
      resolve(false);
    }, ms);
    const onExit = () => {
      clearTimeout(timer);
      resolve(true);
    };
    child.once("exit", onExit);
  });
}

/**
 * Starts the daemon and connects to it over its stdio. Returns at once; a daemon that cannot
 * start fails the first request with `ClientError` reason `closed`.
 */
export function spawnAppServer(options: SpawnOptions): SpawnedAppServerClient {
  const env: Record<string, string | undefined> = { ...process.env, ...options.env };
  if (options.home !== undefined) env.MCP_APP_SERVER_HOME = options.home;
  const logs = options.stderr ?? "inherit";
  const child = spawn(options.bin, options.args ?? [], {
    cwd: options.cwd,
    env,
    stdio: ["pipe", "pipe", typeof logs === "function" ? "pipe" : logs],
    windowsHide: true,
  });
  if (typeof logs === "function") {
    child.stderr?.setEncoding("utf8").on("data", (text: string) => logs(text));
  }
  const stdin = child.stdin as Writable;
  const stdout = child.stdout as Readable;
  const stream = new StreamChannel(stdout, stdin, options);
  child.once("error", (error) =>
    stream.close(new ClientError("closed", `cannot run ${options.bin}: ${error.message}`, { cause: error })),
  );
  child.once("exit", (code, signal) =>
    stream.close(new ClientError("closed", `the daemon exited (${signal ?? `code ${code}`})`)),
  );

  const grace = options.exitTimeoutMs ?? 5000;
  const channel: Channel = {
    request: (method, params, requestOptions) => stream.request(method, params, requestOptions),
    notify: (method, params) => stream.notify(method, params),
    onNotification: (listener) => stream.onNotification(listener),
    onClose: (listener) => stream.onClose(listener),
    async dispose() {
      // Closing stdin asks the daemon to finish what it is writing and exit.
      await stream.dispose();
      if (child.pid === undefined || (await waitForExit(child, grace))) return;
      child.kill("SIGTERM");
      if (await waitForExit(child, grace)) return;
      child.kill("SIGKILL");
      await waitForExit(child, grace);
    },
  };
  return new SpawnedAppServerClient(channel, child);
}

/**
 * A client over streams that reach a daemon started some other way (e.g. `readable` is its
 * stdout and `writable` its stdin). `dispose()` ends `writable`.
 */
export function connectStreams(readable: Readable, writable: Writable, options: StreamOptions = {}): McpAppServerClient {
  return new McpAppServerClient(new StreamChannel(readable, writable, options));
}
