// The reference GraphQL-over-HTTP audit of the graphql-http package against a running server.
// Usage: node js/audit.mjs http://127.0.0.1:PORT/graphql  -> one JSON line: [{name, status, reason}]
import { auditServer } from 'graphql-http';

const url = process.argv[2];
const results = await auditServer({ url });
const report = [];
for (const r of results) {
  let reason;
  if (r.status !== 'ok') reason = r.reason + (r.response ? ` (status ${r.response.status})` : '');
  report.push({ id: r.id, name: r.name, status: r.status, reason });
}
console.log(JSON.stringify(report));
