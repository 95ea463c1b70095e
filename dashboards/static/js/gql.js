// The gateway's GraphQL as the pages speak it: every operation is one of the persisted
// operations (dashboards/operations/*.graphql), sent by its hash with the signed-in token;
// subscriptions stream over HTTP (graphql-sse, the protocol's reference client).
import * as session from './session.js';

let manifest = null;

async function operation(name) {
  manifest ??= fetch('/dashboards/operations.json').then(async (response) => {
    if (!response.ok) throw new RequestFailed(await failure(response));
    return response.json();
  });
  const found = (await manifest)[name];
  if (!found) throw new Error(`${name} is not a persisted operation`);
  return found;
}

function body(name, { id, body: text }, variables, withText = false) {
  return {
    operationName: name,
    variables,
    extensions: { persistedQuery: { version: 1, sha256Hash: id } },
    ...(withText ? { query: text } : {}),
  };
}

function authorization() {
  const token = session.current()?.token;
  return token ? { authorization: `Bearer ${token}` } : {};
}

// A request the gateway refused whole (no data): its first error's code and message.
export class RequestFailed extends Error {
  constructor({ code, message, errors = [] }) {
    super(message);
    this.code = code;
    this.errors = errors;
  }
}

async function failure(response) {
  try {
    const answer = await response.json();
    const first = answer.errors?.[0] ?? {};
    return {
      code: first.extensions?.code ?? `HTTP_${response.status}`,
      message: first.message ?? response.statusText,
      errors: answer.errors ?? [],
    };
  } catch {
    return { code: `HTTP_${response.status}`, message: `The gateway answered ${response.status}.` };
  }
}

// Runs a query or mutation: `{data, errors}`, where errors are the partial answer's (a
// system that did not answer); a request refused whole throws RequestFailed. The hash goes
// first; where the gateway keeps automatic persisted queries and has not seen it yet, the
// text follows (Apollo's protocol); a safelist knows every hash.
export async function run(name, variables = {}) {
  const found = await operation(name);
  try {
    return await send(body(name, found, variables));
  } catch (error) {
    if (error.code !== 'PERSISTED_QUERY_NOT_FOUND') throw error;
    return send(body(name, found, variables, true));
  }
}

async function send(payload) {
  let response;
  try {
    response = await fetch('/graphql', {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        // application/json: a refusal the page recovers from (an automatic persisted query
        // not yet known) is a 200, not a failed request in the browser's console.
        accept: 'application/json',
        ...authorization(),
      },
      body: JSON.stringify(payload),
    });
  } catch {
    throw new RequestFailed({ code: 'NETWORK', message: 'The gateway cannot be reached.' });
  }
  if (response.status === 401) {
    session.forget();
    window.dispatchEvent(new Event('opsgraph:signed-out'));
  }
  if (!response.ok) throw new RequestFailed(await failure(response));
  const answer = await response.json();
  if (answer.data == null) {
    const first = answer.errors?.[0] ?? {};
    throw new RequestFailed({
      code: first.extensions?.code ?? 'INTERNAL',
      message: first.message ?? 'The gateway gave no answer.',
      errors: answer.errors ?? [],
    });
  }
  return { data: answer.data, errors: answer.errors ?? [] };
}

// The errors of a partial answer that concern `path` (a field's path, e.g. ['customer',
// 'invoices']): those at it or under it.
export function errorsAt(errors, ...path) {
  return errors.filter((e) => path.every((part, i) => e.path?.[i] === part));
}

let client = null;

// Streams a subscription: `onNext(data)` per event; returns a function that ends it. A
// dropped stream is retried by the client with backoff; `onError` hears one it gave up on.
export function subscribe(name, variables, onNext, onError = () => {}) {
  client ??= window.graphqlSse.createClient({
    url: '/graphql',
    headers: authorization,
    retryAttempts: 20,
  });
  let dispose = () => {};
  let ended = false;
  operation(name).then((found) => {
    if (ended) return;
    // With its text: a stream cannot be asked again for what the gateway did not know.
    dispose = client.subscribe(body(name, found, variables, true), {
      next: (event) => (event.data ? onNext(event.data) : onError(event.errors)),
      error: (error) => onError(Array.isArray(error) ? error : [{ message: String(error) }]),
      complete: () => {},
    });
  }, onError);
  return () => {
    ended = true;
    dispose();
  };
}

// An idempotency key for one intended write: kept while the same write is retried.
export function newKey() {
  if (crypto.randomUUID) return crypto.randomUUID();
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');
}
