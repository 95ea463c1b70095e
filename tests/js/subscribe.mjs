// A GraphQL subscription through a reference client, as a dashboard would hold one: over a
// WebSocket with graphql-ws (graphql-transport-ws) for a ws:// url, over Server-Sent Events
// with graphql-sse (distinct connections: one POST, Accept: text/event-stream) for http://.
// Prints one JSON line per thing that happens:
//   {"connected": true}            the server acknowledged the WebSocket connection
//   {"next": <ExecutionResult>}    a message of the subscription
//   {"error": ...}                 the subscription or the connection failed
//   {"complete": true}             the server ended it
//   {"stopped": true}              `count` messages were read, and the client ended it
// Usage: node subscribe.mjs <ws:// or http:// url> <bearer token or ""> <query> <variables JSON> <count>
import { createClient as overWebSocket } from 'graphql-ws';
import { createClient as overSSE } from 'graphql-sse';
import WebSocket from 'ws';

const [url, token, query, variables, count] = process.argv.slice(2);
const say = (line) => console.log(JSON.stringify(line));

function describe(error) {
  if (Array.isArray(error)) return { errors: error };
  if (error && typeof error.code === 'number') return { code: error.code, reason: error.reason };
  if (error instanceof Response) return { status: error.status };
  return { message: String(error && error.message ? error.message : error) };
}

const client = url.startsWith('http')
  ? overSSE({
      url,
      headers: token ? { authorization: `Bearer ${token}` } : {},
      retryAttempts: 0,
    })
  : overWebSocket({
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

const end = (code) => Promise.resolve(client.dispose()).then(() => process.exit(code));

let seen = 0;
const unsubscribe = client.subscribe(
  { query, variables: JSON.parse(variables || '{}') },
  {
    next: (value) => {
      say({ next: value });
      seen += 1;
      if (seen >= Number(count)) {
        unsubscribe();
        say({ stopped: true });
        end(0);
      }
    },
    error: (error) => {
      say({ error: describe(error) });
      end(1);
    },
    complete: () => {
      say({ complete: true });
      end(0);
    },
  },
);
