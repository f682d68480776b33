// Talking to the server: queries and mutations over HTTP, subscriptions over graphql-transport-ws, both with
// the tab's API key (Bearer header; connection_init payload).
import { createClient } from "./vendor/graphql-ws/client.js";
import { storedKey } from "./session.js";

export const ENDPOINT = new URL("/graphql", location.href).href;

export class GraphQLError extends Error {
  constructor(errors) {
    super(errors.map((error) => error.message).join("; "));
    this.code = errors[0]?.extensions?.code;
    // Where in the input a BAD_USER_INPUT points ("space.lr.low"), for forms to mark the field.
    this.path = errors[0]?.extensions?.path;
  }
}

export async function query(document, variables = {}) {
  const response = await fetch(ENDPOINT, {
    method: "POST",
    headers: { "Content-Type": "application/json", Authorization: `Bearer ${storedKey()}` },
    body: JSON.stringify({ query: document, variables }),
  });
  let body;
  try {
    body = await response.json();
  } catch {
    throw new GraphQLError([{ message: `${response.status} ${response.statusText}` }]);
  }
  if (body.errors?.length) throw new GraphQLError(body.errors);
  return body.data;
}

const listeners = new Set();
let client = null;

/** Calls ``listener(state)`` with "live", "idle" (closed as no page needs it) or "reconnecting". */
export function onConnection(listener) {
  listeners.add(listener);
  return () => listeners.delete(listener);
}

function liveClient() {
  client ??= createClient({
    url: ENDPOINT.replace(/^http/, "ws"),
    connectionParams: () => ({ authorization: `Bearer ${storedKey()}` }),
    // A dashboard stays open for hours: keep reconnecting (a refused key, 4403, still stops it).
    retryAttempts: Infinity,
    keepAlive: 15_000,
    // Pages come and go; keep the socket a moment so moving between them does not reconnect.
    lazyCloseTimeout: 3_000,
    on: {
      connected: () => listeners.forEach((listener) => listener("live")),
      // 1000: closed on purpose, when no subscription was left; anything else is retried.
      closed: (event) =>
        listeners.forEach((listener) => listener(event?.code === 1000 ? "idle" : "reconnecting")),
    },
  });
  return client;
}

/**
 * Subscribes; ``onData(data)`` gets each result. ``resume(data, variables)``, when given, may change the
 * variables in place: graphql-ws sends the same payload object again when it reconnects, so a stream can
 * continue from its cursor instead of starting over. Returns the function that ends the subscription.
 */
export function subscribe(document, variables, onData, { onError, resume } = {}) {
  const payload = { query: document, variables: { ...variables } };
  return liveClient().subscribe(payload, {
    next(result) {
      if (result.errors?.length) onError?.(new GraphQLError(result.errors));
      else if (result.data) {
        resume?.(result.data, payload.variables);
        onData(result.data);
      }
    },
    error(error) {
      onError?.(error instanceof Error ? error : new Error(error?.reason || "the live connection failed"));
    },
    complete() {},
  });
}

/** Closes the live connection at once; active subscriptions reconnect and resume. Tests use it. */
export function dropConnection() {
  client?.terminate();
}

/** Forgets the live connection (after logging out, its key is no longer ours). */
export function closeConnection() {
  client?.dispose();
  client = null;
}
