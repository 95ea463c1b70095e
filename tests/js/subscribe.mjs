// A GraphQL subscription through the reference graphql-transport-ws client (graphql-ws),
// as a dashboard would hold one. Prints one JSON line per thing that happens:
//   {"connected": true}            the server acknowledged the connection
//   {"next": <ExecutionResult>}    a message of the subscription
//   {"error": ...}                 the subscription or the connection failed
//   {"complete": true}             the server ended it, or `count` messages were read
// Usage: node subscribe.mjs <ws url> <bearer token or ""> <query> <variables JSON> <count>
import { createClient } from 'graphql-ws';
import WebSocket from 'ws';

const [url, token, query, variables, count] = process.argv.slice(2);
const say = (line) => console.log(JSON.stringify(line));

const client = createClient({
  url,
  webSocketImpl: WebSocket,
  connectionParams: token ? { authorization: `Bearer ${token}` } : {},
  retryAttempts: 0,
  lazy: false,
  on: { connected: () => say({ connected: true }) },
  onNonLazyError: (error) => {
    say({ error: describe(error) });
    process.exit(1);
  },
});

function describe(error) {
  if (Array.isArray(error)) return { errors: error };
  if (error && typeof error.code === 'number') return { code: error.code, reason: error.reason };
  return { message: String(error && error.message ? error.message : error) };
}

let seen = 0;
const unsubscribe = client.subscribe(
  { query, variables: JSON.parse(variables || '{}') },
  {
    next: (value) => {
      say({ next: value });
      seen += 1;
      if (seen >= Number(count)) {
        unsubscribe();
        say({ complete: true });
        client.dispose().then(() => process.exit(0));
      }
    },
    error: (error) => {
      say({ error: describe(error) });
      client.dispose().then(() => process.exit(1));
    },
    complete: () => {
      say({ complete: true });
      client.dispose().then(() => process.exit(0));
    },
  },
);
