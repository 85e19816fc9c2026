// Validates every JSON-RPC message between the frontend and the daemon against schema/, the
// way it passes: requests and notifications against the bundle's typed envelopes, results
// against the per-method result schema of the request they answer.

import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import Ajv from 'ajv';

// schemars annotates integers with their Rust width (as in tests/ts/validate-schema.mjs).
const INTEGER_FORMATS = {
  int32: [-(2 ** 31), 2 ** 31 - 1],
  int64: [Number.MIN_SAFE_INTEGER, Number.MAX_SAFE_INTEGER],
  uint8: [0, 2 ** 8 - 1],
  uint16: [0, 2 ** 16 - 1],
  uint32: [0, 2 ** 32 - 1],
  uint64: [0, Number.MAX_SAFE_INTEGER],
  uint: [0, Number.MAX_SAFE_INTEGER],
  int: [Number.MIN_SAFE_INTEGER, Number.MAX_SAFE_INTEGER],
};

const stem = (method) => method.replaceAll('/', '.');

export function loadSchemas(schemaDir) {
  const ajv = new Ajv({ strict: false, allErrors: true });
  for (const [name, [min, max]] of Object.entries(INTEGER_FORMATS)) {
    ajv.addFormat(name, { type: 'number', validate: (n) => Number.isInteger(n) && n >= min && n <= max });
  }
  ajv.addSchema(JSON.parse(readFileSync(join(schemaDir, 'mcp-app-server.schema.json'), 'utf8')), 'bundle');
  const definition = (name) => ajv.getSchema(`bundle#/definitions/${name}`);
  const results = new Map();
  for (const file of readdirSync(join(schemaDir, 'requests'))) {
    if (file.endsWith('.result.json')) {
      results.set(file.slice(0, -'.result.json'.length), ajv.compile(JSON.parse(readFileSync(join(schemaDir, 'requests', file), 'utf8'))));
    }
  }
  return {
    ajv,
    clientRequest: definition('ClientRequest'),
    clientNotification: definition('JsonRpcNotification'),
    success: definition('JsonRpcResponse'),
    failure: definition('JsonRpcErrorResponse'),
    serverNotification: definition('ServerNotification'),
    result: (method) => results.get(stem(method)),
  };
}

/**
 * One conversation's checker. `check(direction, message)` validates a message and records
 * what is wrong in `problems`; `seen` counts the messages checked.
 */
export class ConversationValidator {
  #schemas;
  #methods = new Map();
  problems = [];
  /** Invalid messages a test sent on purpose (see `expectInvalidRequest`). */
  expected = [];
  #allowed = 0;
  seen = { send: 0, receive: 0 };

  constructor(schemas) {
    this.#schemas = schemas;
  }

  /** The next request sent is invalid on purpose (to see the daemon refuse it). */
  expectInvalidRequest() {
    this.#allowed += 1;
  }

  #fail(direction, message, why) {
    if (direction === 'send' && this.#allowed > 0) {
      this.#allowed -= 1;
      this.expected.push(why);
      return;
    }
    this.problems.push(`${direction} ${JSON.stringify(message).slice(0, 300)}: ${why}`);
  }

  #run(validate, direction, message, value, what) {
    if (!validate) return this.#fail(direction, message, `no schema for ${what}`);
    if (!validate(value)) this.#fail(direction, message, `${what}: ${this.#schemas.ajv.errorsText(validate.errors)}`);
  }

  check(direction, message) {
    this.seen[direction] += 1;
    if (Array.isArray(message)) {
      for (const one of message) this.check(direction, one);
      this.seen[direction] -= 1;
      return;
    }
    if (typeof message !== 'object' || message === null) return this.#fail(direction, message, 'not an object');
    const s = this.#schemas;
    if (direction === 'send') {
      if ('id' in message) {
        this.#methods.set(message.id, message.method);
        return this.#run(s.clientRequest, direction, message, message, 'request');
      }
      return this.#run(s.clientNotification, direction, message, message, 'notification');
    }
    if ('method' in message) return this.#run(s.serverNotification, direction, message, message, 'notification');
    if ('error' in message) return this.#run(s.failure, direction, message, message, 'error reply');
    const method = this.#methods.get(message.id);
    if (method === undefined) return this.#fail(direction, message, 'a reply to no request sent');
    this.#run(s.success, direction, message, message, 'reply');
    this.#run(s.result(method), direction, message, message.result, `result of ${method}`);
  }
}
