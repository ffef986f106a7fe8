// The official TypeScript SDK client (@modelcontextprotocol/sdk 1.x, which
// speaks the initialize handshake up to 2025-11-25) against `agentmesh
// serve` over stdio: list the tools, call every built-in tool, see allowed,
// redacted and blocked results, then find every call in `agentmesh audit`
// and verify the log.
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';

import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { McpError } from '@modelcontextprotocol/sdk/types.js';

import * as L from './lib.mjs';

const CLIENT_NAME = 'e2e-sdk-stdio';

describe('@modelcontextprotocol/sdk Client over stdio', { timeout: L.SUITE_TIMEOUT_MS }, () => {
  let api;
  let ws;
  let client;
  let transport;
  let serverPid;
  let stderr = '';
  const transportErrors = [];
  const made = [];
  let wire;

  before(async () => {
    api = await L.startApi();
    ws = L.makeWorkspace({ apiUrl: api.url, scratch: true });
    transport = new StdioClientTransport({ command: L.BIN, args: ws.serveArgs(), env: ws.env, stderr: 'pipe' });
    transport.stderr.on('data', (d) => (stderr += d));
    wire = L.recordTransport(transport);
    client = new Client({ name: CLIENT_NAME, version: '1.0.0' });
    // A non-JSON line on stdout makes the SDK's stdio transport report an
    // error here: stdout must carry only JSON-RPC.
    client.onerror = (e) => transportErrors.push(e);
    await client.connect(transport);
    serverPid = transport.pid;
  });

  after(async () => {
    await client?.close().catch(() => {});
    await L.killAll();
    await api?.close();
    ws?.cleanup();
  });

  test('initialize: server info, tools capability, 2025-11-25', () => {
    assert.equal(client.getServerVersion()?.name, 'agentmesh');
    assert.ok(client.getServerCapabilities()?.tools, 'server advertises tools');
    assert.ok(client.getInstructions()?.includes('agentmesh'), 'server sends instructions');
    const init = wire.received.find((m) => m.id === wire.sent.find((s) => s.method === 'initialize')?.id);
    assert.equal(init?.result?.protocolVersion, '2025-11-25', 'the initialize handshake settled on 2025-11-25');
  });

  test('tools/list: the six built-in tools (a read-write mount) with input schemas', async () => {
    const { tools } = await client.listTools();
    L.assertBuiltinTools(tools, { writable: true });
  });

  test('allowed: every built-in tool', async () => {
    const csv = await L.callCase(client, L.CASES.readAllowed, made);
    assert.match(csv.text, /^month,region,orders,revenue_eur/);

    const list = await L.callCase(client, L.CASES.list, made);
    const names = list.res.structuredContent?.entries?.map((e) => e.name) ?? [];
    for (const n of ['README.txt', 'reports', 'notes', 'users.json']) assert.ok(names.includes(n), `filesystem_list /data shows ${n}: ${names}`);

    const sel = await L.callCase(client, L.CASES.select, made);
    assert.deepEqual(sel.res.structuredContent?.columns, ['id', 'name', 'role']);
    assert.equal(sel.res.structuredContent?.rows?.length, 10);

    const code = await L.callCase(client, L.CASES.code, made);
    assert.equal(code.text.trim(), '2');

    // filesystem_write succeeds on the read-write root /scratch and the
    // file lands on the host; reading it back goes through the same tool chain.
    await L.callCase(client, L.CASES.writeScratch, made);
    assert.equal(readFileSync(join(ws.scratchDir, 'note.txt'), 'utf8'), 'written by e2e');
    const back = await L.callCase(client, L.CASES.readScratch, made);
    assert.equal(back.text, 'written by e2e');

    const before = api.requests.length;
    const call = await L.callCase(client, L.CASES.apiAllowed(api.url), made);
    assert.match(call.text, /sunny/);
    assert.equal(api.requests.length, before + 1, 'the stand-in API was called once');
    assert.equal(api.requests.at(-1).url, '/v1/forecast?city=Paris');
  });

  test('redacted: secrets and personal data never reach the client', async () => {
    const secrets = L.sampleSecrets(ws);
    const creds = await L.callCase(client, L.CASES.readSecret, made);
    L.assertNoSecrets(JSON.stringify(creds.res), secrets.all, 'credentials.txt result');
    assert.match(creds.text, /password/);
    const users = await L.callCase(client, L.CASES.readPII, made);
    L.assertNoSecrets(JSON.stringify(users.res), secrets.all, 'users.json result');
    assert.match(users.text, /Ada Lovelace/, 'non-sensitive fields pass through');
  });

  test('blocked: outside the root, traversal, blocked glob, read-only root, DROP TABLE, unscoped API', async () => {
    const secrets = L.sampleSecrets(ws);
    const hosts = await L.callCase(client, L.CASES.readEtcHosts, made);
    assert.doesNotMatch(hosts.text, /localhost/, '/etc/hosts content is not returned');
    const trav = await L.callCase(client, L.CASES.readTraversal, made);
    assert.doesNotMatch(trav.text, /root:/, '/etc/passwd content is not returned');
    const env = await L.callCase(client, L.CASES.readDotEnv, made);
    L.assertNoSecrets(env.text, secrets.env, '.env refusal');

    await L.callCase(client, L.CASES.write, made);
    assert.ok(!existsSync(join(ws.stateDir, 'data', 'reports', 'new.txt')), 'nothing was written to the read-only root');

    await L.callCase(client, L.CASES.drop, made);
    const n = api.requests.length;
    await L.callCase(client, L.CASES.apiBlocked, made);
    assert.equal(api.requests.length, n, 'a blocked api_call sends no request');
  });

  test('unknown tool: a JSON-RPC error, not a tool result', async () => {
    await assert.rejects(
      client.callTool({ name: 'no_such_tool', arguments: { path: '/data/users.json' } }),
      (e) => {
        assert.ok(e instanceof McpError, `McpError, got ${e?.constructor?.name}: ${e?.message}`);
        assert.equal(e.code, -32602, `unknown tool: error code -32602 (${e.message})`);
        return true;
      },
    );
  });

  test('stdout carried only JSON-RPC; the console view went to stderr', () => {
    assert.deepEqual(transportErrors.map(String), [], 'the SDK transport saw only valid JSON-RPC');
    assert.match(stderr, /✓ allowed\s+filesystem_read/);
    assert.match(stderr, /✗ blocked\s+database_query/);
  });

  test('audit: every call with its result; audit verify passes', async () => {
    await client.close();
    assert.ok(serverPid > 0);
    await L.assertNoProcessesLeft(ws);
    assert.equal(made.length, 15);
    const secrets = L.sampleSecrets(ws);
    await L.checkAudit(ws, { calls: made, unknownTools: ['no_such_tool'], clientName: CLIENT_NAME, secrets: secrets.all });

    // The CLI's filters agree with the full listing.
    const r = await L.runCli(ws, ['audit', '--result', 'redacted', '--output', 'json', '--limit', '0']);
    assert.equal(r.code, 0, r.stderr);
    const redacted = JSON.parse(r.stdout);
    assert.deepEqual(redacted.map((e) => e.params?.path).sort(), ['/data/notes/credentials.txt', '/data/users.json']);

    await L.assertVerified(ws);
  });
});
