// The GraphQL-over-HTTP conformance audits of graphql-http (serverAudits),
// run against a running endpoint: node audit.mjs http://127.0.0.1:8000/graphql
// AUDIT_AUTHORIZATION="Bearer <key>" is sent with every audit request (the API
// refuses operations without a key).
//
// Prints `ok=N notice=N warn=N error=N fatal=N total=N`, then a line per audit
// that is not ok. Exit 0: nothing failed (no error, no fatal); 1: an audit
// failed or threw; 2: bad usage.
import { serverAudits } from 'graphql-http';

const url = process.argv[2];
if (!url || !/^https?:\/\//.test(url)) {
  console.error('usage: node audit.mjs <http(s)://host:port/graphql>');
  process.exit(2);
}

const authorization = process.env.AUDIT_AUTHORIZATION;
const fetchFn = (input, init = {}) => {
  const headers = new Headers(init.headers || {});
  if (authorization) headers.set('authorization', authorization);
  return globalThis.fetch(input, { ...init, headers });
};

const results = [];
for (const audit of serverAudits({ url, fetchFn })) {
  try {
    // Resolves to {id, name, status: 'ok' | 'notice' | 'warn' | 'error', reason?}.
    results.push(await audit.fn());
  } catch (err) {
    results.push({ id: audit.id, name: audit.name, status: 'fatal', reason: String(err?.cause?.message || err?.message || err) });
  }
}

const counts = { ok: 0, notice: 0, warn: 0, error: 0, fatal: 0 };
for (const result of results) counts[result.status] += 1;
console.log(
  `ok=${counts.ok} notice=${counts.notice} warn=${counts.warn} ` +
    `error=${counts.error} fatal=${counts.fatal} total=${results.length}`,
);
for (const result of results.filter((r) => r.status !== 'ok')) {
  const reason = String(result.reason || '').replace(/\s+/g, ' ').slice(0, 300);
  console.log(`${result.status} ${result.id} ${result.name} :: ${reason}`);
}
process.exit(counts.error > 0 || counts.fatal > 0 ? 1 : 0);
