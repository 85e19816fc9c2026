// Message framing on a byte stream: `Content-Length` headers (what vscode-jsonrpc and LSP
// clients speak; the default) or one JSON message per line. The daemon detects the framing
// from the first bytes it reads and answers in the same one.

/** How messages are delimited on the stream. */
export type Framing = "content-length" | "newline";

/** The daemon refuses larger messages too; a reply this large means something is wrong. */
export const DEFAULT_MAX_MESSAGE_BYTES = 16 * 1024 * 1024;
const MAX_HEADER_BYTES = 8 * 1024;
const HEADER_END = Buffer.from("\r\n\r\n", "ascii");
const NEWLINE = 0x0a;

/** The stream does not carry framed JSON messages. */
export class FramingError extends Error {
  override readonly name = "FramingError";
}

/** One message, framed. `JSON.stringify` escapes newlines, so a line is always one message. */
export function encodeMessage(message: unknown, framing: Framing): Buffer {
  const body = Buffer.from(JSON.stringify(message), "utf8");
  if (framing === "newline") {
    return Buffer.concat([body, Buffer.from([NEWLINE])]);
  }
  return Buffer.concat([Buffer.from(`Content-Length: ${body.length}\r\n\r\n`, "ascii"), body]);
}

/**
 * Splits a byte stream into parsed JSON messages. Bytes may arrive in chunks of any size;
 * nothing is buffered beyond one message of at most `maxMessageBytes`.
 */
export class FrameDecoder {
  readonly #framing: Framing;
  readonly #max: number;
  #chunks: Buffer[] = [];
  #length = 0;
  /** Content-Length of the body being read, once its header is consumed. */
  #bodyLength: number | undefined;
  /** Bytes already searched for a newline (newline framing). */
  #scanned = 0;

  constructor(framing: Framing, maxMessageBytes = DEFAULT_MAX_MESSAGE_BYTES) {
    this.#framing = framing;
    this.#max = maxMessageBytes;
  }

  /** Adds bytes; returns every message they complete. Throws `FramingError` on bad input. */
  push(chunk: Buffer): unknown[] {
    if (chunk.length > 0) {
      this.#chunks.push(chunk);
      this.#length += chunk.length;
    }
    const out: unknown[] = [];
    for (;;) {
      const body = this.#framing === "newline" ? this.#nextLine() : this.#nextFrame();
      if (body === undefined) return out;
      if (body.length === 0) continue; // blank line between messages
      try {
        out.push(JSON.parse(body.toString("utf8")));
      } catch (error) {
        throw new FramingError(`a message is not JSON: ${(error as Error).message}`);
      }
    }
  }

  #joined(): Buffer {
    if (this.#chunks.length > 1) this.#chunks = [Buffer.concat(this.#chunks, this.#length)];
    return this.#chunks[0] ?? Buffer.alloc(0);
  }

  #take(n: number): Buffer {
    const all = this.#joined();
    const head = all.subarray(0, n);
    const rest = all.subarray(n);
    this.#chunks = rest.length > 0 ? [rest] : [];
    this.#length = rest.length;
    return head;
  }

  #nextLine(): Buffer | undefined {
    const all = this.#joined();
    const at = all.indexOf(NEWLINE, this.#scanned);
    if (at < 0) {
      this.#scanned = all.length;
      if (all.length > this.#max) {
        throw new FramingError(`a message is longer than ${this.#max} bytes`);
      }
      return undefined;
    }
    this.#scanned = 0;
    const line = this.#take(at + 1).subarray(0, at);
    return line.at(-1) === 0x0d ? line.subarray(0, -1) : line;
  }

  #nextFrame(): Buffer | undefined {
    if (this.#bodyLength === undefined) {
      const all = this.#joined();
      const end = all.indexOf(HEADER_END);
      if (end < 0) {
        if (all.length > MAX_HEADER_BYTES) {
          throw new FramingError(`no end of headers within ${MAX_HEADER_BYTES} bytes`);
        }
        return undefined;
      }
      this.#bodyLength = this.#contentLength(this.#take(end + HEADER_END.length).subarray(0, end));
    }
    if (this.#length < this.#bodyLength) return undefined;
    const body = this.#take(this.#bodyLength);
    this.#bodyLength = undefined;
    return body;
  }

  #contentLength(header: Buffer): number {
    let length: number | undefined;
    for (const line of header.toString("ascii").split("\r\n")) {
      const colon = line.indexOf(":");
      if (colon <= 0) throw new FramingError(`malformed header line ${JSON.stringify(line)}`);
      if (line.slice(0, colon).trim().toLowerCase() !== "content-length") continue;
      const value = line.slice(colon + 1).trim();
      if (!/^\d{1,12}$/.test(value)) throw new FramingError(`invalid Content-Length ${JSON.stringify(value)}`);
      length = Number(value);
    }
    if (length === undefined) throw new FramingError("a message has no Content-Length header");
    if (length > this.#max) {
      throw new FramingError(`a message of ${length} bytes is over the ${this.#max}-byte limit`);
    }
    return length;
  }
}
