// Audits a live opsgraph against the GraphQL-over-HTTP spec with graphql-http's own
// `auditServer` (the audit the spec's authors maintain).
// Prints one JSON line: [{"id", "name", "status": "ok" | "notice" | "warn" | "error", "reason"?}].
// Usage: OPSGRAPH_AUTHORIZATION="Bearer ..." node http_audit.mjs <opsgraph /graphql URL>
import { auditServer } from "graphql-http";

const authorization = process.env.OPSGRAPH_AUTHORIZATION ?? "";
// Every audit request carries the credential, as any client of opsgraph must, and the
// header that shows a GET was preflighted (opsgraph's CSRF prevention, as Apollo's).
const fetchFn = (input, init = {}) => {
  const headers = new Headers(init.headers);
  headers.set("authorization", authorization);
  headers.set("apollo-require-preflight", "true");
  return fetch(input, { ...init, headers });
};
const results = await auditServer({ url: process.argv[2], fetchFn });
console.log(
  JSON.stringify(
    results.map(({ id, name, status, reason }) => ({ id, name, status, reason })),
  ),
);
