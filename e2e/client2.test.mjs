// The 2026-07-28 client (@modelcontextprotocol/client 2.x) against `agentmesh
// serve`, over stdio and streamable HTTP. The 2.x client speaks the 2025
// initialize handshake unless told otherwise, so these tests pin the
// stateless 2026-07-28 revision (`versionNegotiation: {mode: {pin}}`) and
// check on the wire that it was used: no initialize, the per-request _meta
// envelope on every request, resultType on every result. One test also
// lets the client negotiate ('auto') and checks that it picks 2026-07-28.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import { Client, ProtocolError, StreamableHTTPClientTransport } from '@modelcontextprotocol/client';
import { StdioClientTransport } from '@modelcontextprotocol/client/stdio';

import * as L from './lib.mjs';

const MODERN = '2026-07-28';
const PV = 'io.modelcontextprotocol/protocolVersion';

function modernClient(name, mode = { pin: MODERN }) {
  const client = new Client({ name, version: '2.0.0' }, { versionNegotiation: { mode } });
  const errors = [];
  client.onerror = (e) => errors.push(e);
  return { client, errors };
}

/** Assert the recorded traffic is the stateless 2026-07-28 revision. */
function assertModernWire(wire) {
  assert.ok(wire.sent.length > 0, 'requests were recorded');
  assert.ok(!wire.sent.some((m) => m.method === 'initialize'), 'no initialize handshake was sent');
  for (const m of wire.sent.filter((m) => m.method && m.id !== undefined)) {
    assert.equal(m.params?._meta?.[PV], MODERN, `${m.method} carries _meta ${PV}=${MODERN}`);
  }
  const results = wire.received.filter((m) => m.result);
  assert.ok(results.length > 0, 'responses were recorded');
  for (const m of results) {
    assert.equal(m.result.resultType, 'complete', `response ${m.id} has resultType complete (2026-07-28)`);
  }
}

async function runMatrix(client, api, ws, made) {
  const { tools } = await client.listTools();
  L.assertBuiltinTools(tools, { writable: true });

  const csv = await L.callCase(client, L.CASES.readAllowed, made);
  assert.match(csv.text, /^month,region/);
  const sel = await L.callCase(client, L.CASES.select, made);
  assert.equal(sel.res.structuredContent?.rows?.length, 10);
  const code = await L.callCase(client, L.CASES.code, made);
  assert.equal(code.text.trim(), '2');
  const call = await L.callCase(client, L.CASES.apiAllowed(api.url), made);
  assert.match(call.text, /sunny/);
  await L.callCase(client, L.CASES.list, made);

  const secrets = L.sampleSecrets(ws);
  const creds = await L.callCase(client, L.CASES.readSecret, made);
  L.assertNoSecrets(JSON.stringify(creds.res), secrets.all, 'credentials.txt result');
  const users = await L.callCase(client, L.CASES.readPII, made);
  L.assertNoSecrets(JSON.stringify(users.res), secrets.all, 'users.json result');

  await L.callCase(client, L.CASES.readEtcHosts, made);
  await L.callCase(client, L.CASES.drop, made);
  await L.callCase(client, L.CASES.apiBlocked, made);
  await L.callCase(client, L.CASES.write, made);

  await assert.rejects(client.callTool({ name: 'no_such_tool', arguments: {} }), (e) => {
    assert.ok(e instanceof ProtocolError, `ProtocolError, got ${e?.constructor?.name}: ${e?.message}`);
    assert.equal(e.code, -32602, e.message);
    return true;
  });
}

describe('@modelcontextprotocol/client 2.x over stdio (2026-07-28)', { timeout: L.SUITE_TIMEOUT_MS }, () => {
  let api;
  let ws;
  let client;
  let errors;
  let wire;
  let stderr = '';
  const made = [];

  before(async () => {
    api = await L.startApi();
    ws = L.makeWorkspace({ apiUrl: api.url, scratch: true });
  });

  after(async () => {
    await client?.close().catch(() => {});
    await L.killAll();
    await api?.close();
    ws?.cleanup();
  });

  test('connect pinned to 2026-07-28', async () => {
    ({ client, errors } = modernClient('e2e-client2-stdio'));
    const transport = new StdioClientTransport({ command: L.BIN, args: ws.serveArgs(), env: ws.env, stderr: 'pipe' });
    transport.stderr.on('data', (d) => (stderr += d));
    wire = L.recordTransport(transport);
    await client.connect(transport, { timeout: 30_000 });
    assert.equal(client.getProtocolEra(), 'modern');
    assert.equal(client.getServerVersion()?.name, 'agentmesh');
    const discover = client.getDiscoverResult();
    assert.ok(discover?.supportedVersions?.includes(MODERN), `server/discover offers ${MODERN}: ${JSON.stringify(discover?.supportedVersions)}`);
    assert.ok(discover?.supportedVersions?.includes('2025-11-25'), 'and the 2025-11-25 handshake');
  });

  test('tools/list and allowed, redacted, blocked calls; unknown tool rejects', async () => {
    await runMatrix(client, api, ws, made);
    assertModernWire(wire);
    assert.deepEqual(errors.map(String), [], 'no protocol or transport errors');
    assert.match(stderr, /✗ blocked\s+filesystem_read/);
  });

  test("'auto' negotiation picks 2026-07-28", async () => {
    const { client: auto, errors: autoErrors } = modernClient('e2e-client2-stdio', 'auto');
    const transport = new StdioClientTransport({ command: L.BIN, args: ws.serveArgs(), env: ws.env, stderr: 'ignore' });
    const w = L.recordTransport(transport);
    try {
      await auto.connect(transport, { timeout: 30_000 });
      assert.equal(auto.getProtocolEra(), 'modern');
      await L.callCase(auto, L.CASES.readAllowed, made);
      assertModernWire(w);
      assert.deepEqual(autoErrors.map(String), []);
    } finally {
      await auto.close();
    }
  });

  test('audit: every call with its result; audit verify passes', async () => {
    await client.close();
    await L.assertNoProcessesLeft(ws);
    await L.checkAudit(ws, {
      calls: made,
      unknownTools: ['no_such_tool'],
      clientName: 'e2e-client2-stdio',
      secrets: L.sampleSecrets(ws).all,
    });
    await L.assertVerified(ws);
  });
});

describe('@modelcontextprotocol/client 2.x over streamable HTTP (2026-07-28)', { timeout: L.SUITE_TIMEOUT_MS }, () => {
  let api;
  let ws;
  let serve;
  let client;
  let errors;
  let wire;
  const made = [];

  before(async () => {
    api = await L.startApi();
    ws = L.makeWorkspace({ apiUrl: api.url, scratch: true });
    serve = await L.startHttpServe(ws);
  });

  after(async () => {
    await client?.close().catch(() => {});
    await L.killAll();
    await api?.close();
    ws?.cleanup();
  });

  test('connect pinned to 2026-07-28', async () => {
    ({ client, errors } = modernClient('e2e-client2-http'));
    const transport = new StreamableHTTPClientTransport(new URL(serve.url));
    wire = L.recordTransport(transport);
    await client.connect(transport, { timeout: 30_000 });
    assert.equal(client.getProtocolEra(), 'modern');
    assert.ok(client.getDiscoverResult()?.supportedVersions?.includes(MODERN));
  });

  test('tools/list and allowed, redacted, blocked calls; unknown tool rejects', async () => {
    await runMatrix(client, api, ws, made);
    assertModernWire(wire);
    assert.deepEqual(errors.map(String), [], 'no protocol or transport errors');
  });

  test('audit: every call with its result; audit verify passes', async () => {
    await client.close();
    await L.killChild(serve.child);
    await L.assertNoProcessesLeft(ws);
    await L.checkAudit(ws, {
      calls: made,
      unknownTools: ['no_such_tool'],
      clientName: 'e2e-client2-http',
      secrets: L.sampleSecrets(ws).all,
    });
    await L.assertVerified(ws);
  });
});
