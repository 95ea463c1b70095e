// Audits a live opsgraph against the GraphQL-over-HTTP spec with graphql-http's own
// `auditServer` (the audit the spec's authors maintain).
// Prints one JSON line: [{"id", "name", "status": "ok" | "notice" | "warn" | "error", "reason"?}].
// Usage: node http_audit.mjs <opsgraph /graphql URL>
import { auditServer } from "graphql-http";

const results = await auditServer({ url: process.argv[2] });
console.log(
  JSON.stringify(
    results.map(({ id, name, status, reason }) => ({ id, name, status, reason })),
  ),
);
