// A whole day of real use, and an attack, with the official TypeScript SDK
// client against `agentmesh serve` on the default configuration (embedded
// policy, scopes, sample data, trust model). The one change: the weather
// API the seed mentions is a loopback stand-in, so that no test leaves the
// machine.
//
//  - A benign day: the seed's three prompts over and over, the exploration
//    mistakes a new user makes, reads of data with e-mail addresses, a
//    rate-limit burst: at least 500 calls, never below the `standard` tier,
//    never revoked.
//  - An attack session: traversal variants, SSRF disguises, destructive
//    SQL, a secret sent out, scope probing: revoked within 20 calls.
import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';

import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';

import * as L from './lib.mjs';

/**
 * A workspace on the default configuration, but for the weather API's
 * address (the default scopes restated with the stand-in's URL).
 */
function defaultWorkspace(apiUrl) {
  const ws = L.makeWorkspace({ apiUrl });
  writeFileSync(
    ws.config,
    `# the embedded defaults, the weather API replaced by a loopback stand-in
scopes:
  - {resources: ["filesystem:/data/*"], actions: [read, list, write], ttl_minutes: 15}
  - {resources: ["database:*"], actions: [query], ttl_minutes: 15}
  - {resources: ["api:${apiUrl}/*"], actions: [call], ttl_minutes: 15}
  - {resources: ["code:starlark"], actions: [execute], ttl_minutes: 15}
  - {resources: ["mcp:*/*"], actions: [call, read], ttl_minutes: 15}
tools:
  api:
    endpoints: [{url: "${apiUrl}/*", methods: [GET], allow_private: true}]
`,
    { mode: 0o600 },
  );
  return ws;
}

async function connect(ws, name) {
  const transport = new StdioClientTransport({ command: L.BIN, args: ws.serveArgs(), env: ws.env, stderr: 'pipe' });
  let stderr = '';
  transport.stderr.on('data', (d) => (stderr += d));
  const client = new Client({ name, version: '1.0.0' });
  await client.connect(transport);
  return { client, stderr: () => stderr };
}

async function trustNow(ws) {
  const r = await L.runCli(ws, ['trust', 'show', '--output', 'json']);
  assert.equal(r.code, 0, r.stderr);
  return JSON.parse(r.stdout);
}

describe('trust on a whole day of ordinary use and on an attack', { timeout: 300_000 }, () => {
  const cleanups = [];
  after(async () => {
    await L.killAll();
    for (const c of cleanups) await c();
  });

  test('a benign day of 500+ calls never falls below standard and is never revoked', async () => {
    const api = await L.startApi();
    const ws = defaultWorkspace(api.url);
    cleanups.push(() => api.close(), () => ws.cleanup());
    const { client } = await connect(ws, 'e2e-benign-day');
    const { tools } = await client.listTools();
    const names = tools.map((t) => t.name);
    assert.ok(!names.includes('filesystem_write'), 'filesystem_write is not offered: every mount is read-only');
    const weather = `${api.url}/v1/forecast?city=London`;
    // One cycle: the seed's prompts, reads of data with e-mail addresses,
    // and now and then the mistakes a new user makes.
    const seed = [
      ['filesystem_read', { path: '/etc/hosts' }], // "Can you read the file /etc/hosts?"
      ['database_query', { query: 'SELECT * FROM users' }], // "...query the database for user records?"
      ['api_call', { url: weather }], // "...call the weather API?"
      ['filesystem_read', { path: '/data/users.json' }],
      ['filesystem_list', { path: '/data' }],
      ['code_execute', { code: 'result = 1 + 2 + 3' }],
    ];
    const mistakes = [
      ['filesystem_list', { path: '/' }],
      ['filesystem_list', { path: '.' }],
      ['filesystem_read', { path: 'users.json' }],
      ['filesystem_write', { path: '/data/notes.txt', content: 'hello' }],
      ['api_call', { url: 'https://api.openweathermap.org/data/2.5/weather?q=London' }],
      ['code_execute', { code: 'print(1)', language: 'python' }],
      ['database_query', { query: 'SELECT * FROM orders', database: 'sales' }],
    ];
    let calls = 0;
    let lowest = 1000;
    let revoked = false;
    const outcomes = {};
    for (let cycle = 0; calls < 520; cycle++) {
      const batch = [...seed];
      if (cycle % 5 === 0) batch.push(...mistakes);
      // Mid-day, a burst of weather lookups runs into the default
      // policy's 100/hour on api_call.
      if (cycle === 20) for (let i = 0; i < 110; i++) batch.push(['api_call', { url: `${api.url}/v1/forecast?city=c${i}` }]);
      for (const [name, args] of batch) {
        const res = await client.callTool({ name, arguments: args }).catch((e) => ({ isError: true, content: [{ type: 'text', text: String(e) }] }));
        calls++;
        const text = L.resultText(res);
        if (text.includes('access revoked')) revoked = true;
        const key = `${name}:${L.classify(res)}`;
        outcomes[key] = (outcomes[key] ?? 0) + 1;
      }
      const t = await trustNow(ws);
      lowest = Math.min(lowest, t.score);
      assert.ok(!t.revoked, `revoked after ${calls} calls at score ${t.score}`);
    }
    await client.close();
    const t = await trustNow(ws);
    console.log(`benign day: ${calls} calls ${JSON.stringify(outcomes)}; lowest score ${lowest}, final ${t.score} (${t.tier})`);
    assert.ok(!revoked, 'no call was refused as revoked');
    assert.ok(calls >= 500);
    assert.ok(lowest >= 500, `the score fell to ${lowest}, below the standard tier`);
    assert.ok(['standard', 'trusted', 'verified'].includes(t.tier), `final tier ${t.tier}`);
    // The day had refusals and a rate-limit burst (the default policy's
    // 100/hour on api_call), all in the log, which verifies.
    const entries = await L.readAudit(ws);
    assert.ok(entries.some((e) => e.rules?.includes('builtin:root')), 'the /etc/hosts mistakes are logged');
    assert.ok(entries.some((e) => (e.rules ?? []).some((r) => r.startsWith('rate-limit-api-calls'))), 'the rate limit was hit');
    assert.ok(entries.some((e) => e.result === 'redacted'), 'e-mail addresses were redacted');
    await L.assertVerified(ws);
  });

  test('an attack session is revoked within 20 calls', async () => {
    const api = await L.startApi();
    const ws = defaultWorkspace(api.url);
    cleanups.push(() => api.close(), () => ws.cleanup());
    const { client } = await connect(ws, 'e2e-attacker');
    const attack = [
      ['filesystem_read', { path: '/data/../../etc/passwd' }],
      ['api_call', { url: 'http://127.1/admin' }],
      ['database_query', { query: 'DROP TABLE users' }],
      ['filesystem_read', { path: '/data/%2e%2e/%2e%2e/etc/shadow' }],
      ['api_call', { url: 'http://2130706433/latest/meta-data' }],
      ['api_call', { url: `${api.url}/v1/forecast?city=x&aws_secret_access_key=wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY` }],
      ['database_query', { query: 'SELECT 1; DELETE FROM users' }],
      ['filesystem_read', { path: '../../../root/.ssh/id_rsa' }],
      ['api_call', { url: 'http://[::ffff:127.0.0.1]/' }],
      ['api_call', { url: `http://api.weather.com@127.0.0.1/` }],
      ['database_query', { query: "ATTACH DATABASE '/tmp/x.db' AS x" }],
      ['api_call', { url: 'http://localhost./' }],
      ['filesystem_read', { path: '/data/..\\..\\etc\\passwd' }],
      ['api_call', { url: 'http://0x7f000001/' }],
      ['database_query', { query: 'UPDATE users SET role = "admin"' }],
      ['filesystem_read', { path: '/data/users.json' }],
      ['filesystem_read', { path: '/data/users.json' }],
      ['filesystem_read', { path: '/data/users.json' }],
      ['filesystem_read', { path: '/data/users.json' }],
      ['filesystem_read', { path: '/data/users.json' }],
    ];
    let revokedAt = 0;
    for (let i = 0; i < attack.length; i++) {
      const [name, args] = attack[i];
      await client.callTool({ name, arguments: args }).catch(() => {});
      const t = await trustNow(ws);
      if (t.revoked) {
        revokedAt = i + 1;
        break;
      }
    }
    await client.close();
    console.log(`attack session: revoked after ${revokedAt} calls`);
    assert.ok(revokedAt > 0 && revokedAt <= 20, `revoked after ${revokedAt} calls (0: never)`);
    // Revoked means refused, also for an innocent-looking read, and no
    // attack reached the stand-in API.
    const { client: again } = await connect(ws, 'e2e-attacker-again');
    const res = await again.callTool({ name: 'filesystem_read', arguments: { path: '/data/users.json' } });
    assert.ok(res.isError && L.resultText(res).includes('access revoked'));
    await again.close();
    assert.equal(api.requests.length, 0, `the attacks reached the API: ${JSON.stringify(api.requests)}`);
    const entries = await L.readAudit(ws);
    for (const rule of ['builtin:traversal', 'builtin:ssrf', 'builtin:destructive', 'builtin:secret']) {
      assert.ok(entries.some((e) => e.rules?.includes(rule)), `an entry names ${rule}`);
    }
    assert.ok(!JSON.stringify(entries).includes('wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY'), 'the secret is not in the log');
    await L.assertVerified(ws);
  });
});
