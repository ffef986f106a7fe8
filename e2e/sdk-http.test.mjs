// The official TypeScript SDK client (@modelcontextprotocol/sdk 1.x) over
// streamable HTTP against `agentmesh serve --http 127.0.0.1:PORT`: two
// sessions calling concurrently, allowed, redacted and blocked results, the
// audit read and verified while the server runs (another process reading
// the live state) and again after it stopped.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { McpError } from '@modelcontextprotocol/sdk/types.js';

import * as L from './lib.mjs';

describe('@modelcontextprotocol/sdk Client over streamable HTTP', { timeout: L.SUITE_TIMEOUT_MS }, () => {
  let api;
  let ws;
  let serve;
  const clients = [];
  const made = [];

  async function connect(name) {
    const transport = new StreamableHTTPClientTransport(new URL(serve.url));
    const client = new Client({ name, version: '1.0.0' });
    const errors = [];
    client.onerror = (e) => errors.push(e);
    await client.connect(transport);
    clients.push({ client, transport, errors });
    return { client, transport, errors };
  }

  before(async () => {
    api = await L.startApi();
    ws = L.makeWorkspace({ apiUrl: api.url });
    serve = await L.startHttpServe(ws);
  });

  after(async () => {
    for (const c of clients) await c.client.close().catch(() => {});
    await L.killAll();
    await api?.close();
    ws?.cleanup();
  });

  test('serve --http listens on loopback at /mcp', () => {
    assert.match(serve.url, /^http:\/\/127\.0\.0\.1:\d+\/mcp$/);
    assert.equal(serve.stdout(), '', 'serve --http writes nothing to stdout');
  });

  test('a session: initialize, tools/list, a session id', async () => {
    const { client, transport } = await connect('e2e-sdk-http');
    assert.equal(client.getServerVersion()?.name, 'agentmesh');
    assert.ok(transport.sessionId, 'the server assigned an Mcp-Session-Id');
    const { tools } = await client.listTools();
    L.assertBuiltinTools(tools);
  });

  test('allowed, redacted and blocked calls over HTTP', async () => {
    const { client } = clients[0];
    const csv = await L.callCase(client, L.CASES.readAllowed, made);
    assert.match(csv.text, /^month,region/);
    const call = await L.callCase(client, L.CASES.apiAllowed(api.url), made);
    assert.match(call.text, /sunny/);
    const code = await L.callCase(client, L.CASES.code, made);
    assert.equal(code.text.trim(), '2');
    const secret = await L.callCase(client, L.CASES.readSecret, made);
    L.assertNoSecrets(JSON.stringify(secret.res), L.sampleSecrets(ws).all, 'credentials.txt over HTTP');
    await L.callCase(client, L.CASES.readTraversal, made);
    await L.callCase(client, L.CASES.drop, made);
    await L.callCase(client, L.CASES.apiBlocked, made);
  });

  test('two sessions calling concurrently', async () => {
    const a = clients[0].client;
    const { client: b, transport } = await connect('e2e-sdk-http');
    assert.notEqual(transport.sessionId, clients[0].transport.sessionId, 'each connection has its own session');
    await Promise.all([
      L.callCase(a, L.CASES.select, made),
      L.callCase(b, L.CASES.list, made),
      L.callCase(a, L.CASES.readPII, made),
      L.callCase(b, L.CASES.readEtcHosts, made),
      L.callCase(b, L.CASES.select, made),
    ]);
  });

  test('unknown tool: a JSON-RPC error', async () => {
    await assert.rejects(clients[0].client.callTool({ name: 'no_such_tool', arguments: {} }), (e) => {
      assert.ok(e instanceof McpError, `McpError, got ${e?.constructor?.name}: ${e?.message}`);
      assert.equal(e.code, -32602);
      return true;
    });
    for (const c of clients) assert.deepEqual(c.errors.map(String), [], 'no transport errors');
  });

  test('audit while serve runs: every call, and audit verify passes', async () => {
    await L.checkAudit(ws, {
      calls: made,
      unknownTools: ['no_such_tool'],
      clientName: 'e2e-sdk-http',
      secrets: L.sampleSecrets(ws).all,
    });
    await L.assertVerified(ws);
  });

  test('serve stops cleanly on SIGTERM; the log still verifies', async () => {
    for (const c of clients) await c.client.close();
    const exit = new Promise((ok) => serve.child.once('exit', (code, signal) => ok({ code, signal })));
    serve.child.kill('SIGTERM');
    const { code, signal } = await exit;
    assert.equal(code, 0, `serve exited ${code}/${signal}; stderr:\n${serve.stderr()}`);
    await L.assertNoProcessesLeft(ws);
    const entries = await L.checkAudit(ws, { calls: made, unknownTools: ['no_such_tool'], clientName: 'e2e-sdk-http' });
    assert.ok(entries.length > made.length);
    await L.assertVerified(ws);
  });
});
