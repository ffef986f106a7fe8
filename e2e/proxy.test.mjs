// agentmesh as a governing proxy in front of REAL upstream MCP servers from
// npm: @modelcontextprotocol/server-filesystem and
// @modelcontextprotocol/server-everything (2026.8.31, started with node from
// node_modules, nothing fetched at test time). The official SDK client
// talks to `agentmesh serve`; a second SDK client talks to each upstream
// directly, so the tests compare what agentmesh exposes with what the
// upstream itself offers. A "tap" relay (proxylib.mjs) records what
// agentmesh sends to an upstream, so the tests also see that blocked calls
// never reach it and that cancellation is forwarded.
//
//  1. stdio, fs + ev behind one serve (agentmesh.yaml upstreams):
//     namespaced tools with identical schemas, allowed / blocked (policy) /
//     redacted calls, resources and prompts, a policy-refused
//     resources/read, `tools list`, the audit log and `audit verify`.
//  2. streamable HTTP on our side, ev from `serve --upstream 'ev=...'`.
//  3. progress notifications of a long-running upstream tool
//     (`serve --upstream-name ev -- node ...`).
//  4. cancellation forwarded to the upstream and audited as error.
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';

import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { McpError } from '@modelcontextprotocol/sdk/types.js';

import * as L from './lib.mjs';
import * as P from './proxylib.mjs';

// server-everything 2026.8.31 tools used here, with their arguments:
const LONG_OP = 'trigger-long-running-operation'; // {duration: seconds, steps}: progress i/steps every duration/steps s
const ECHO = 'echo'; // {message} → "Echo: <message>"
const GET_ENV = 'get-env'; // {} → the server's environment
const REQ = { timeout: 20_000 }; // per-request SDK timeout: a hang fails the test

// Fake secrets. Not the AWS documentation key AKIAIOSFODNN7EXAMPLE: the
// detectors rightly treat that one as a known example, not a secret.
const AWS_KEY_ID = 'AKIAQX7R2BLMZ4TNW5KD';
const AWS_SECRET = 'tK3vQm9Zr7LpXw2Hn8YbCf5Ja1Ds6Ue4Gi0VoRe8';
const PASSWORD = 'hunter2';
const SECRETS = [AWS_KEY_ID, AWS_SECRET, PASSWORD];

/** Assert `p` rejects with a JSON-RPC error whose message contains `needle`. */
async function assertRpcError(p, needle, what) {
  await assert.rejects(p, (e) => {
    assert.ok(e instanceof McpError, `${what}: a JSON-RPC error (McpError), got ${e?.constructor?.name}: ${e?.message}`);
    assert.ok(e.message.includes(needle), `${what}: error message ${JSON.stringify(e.message)} contains ${JSON.stringify(needle)}`);
    return true;
  });
}

/** Assert a tool result is a denial carrying `message`; returns its text. */
function assertDenied(res, message, what) {
  const text = L.resultText(res);
  assert.equal(res.isError, true, `${what}: isError, got ${JSON.stringify(res).slice(0, 500)}`);
  assert.ok(text.includes(message), `${what}: the reason ${JSON.stringify(message)} reaches the client; got ${JSON.stringify(text)}`);
  return text;
}

/**
 * Assert the exposed tools of `upstream` are the upstream's own, named
 * `NAME__tool`, with description, inputSchema and outputSchema deep-equal
 * to the upstream's tools/list entry. `must`: the upstream tools that have
 * to be exposed; `may` (a superset): the ones that may be (server-everything
 * registers some tools only for clients with roots, sampling or
 * elicitation, so what it offers agentmesh depends on agentmesh's
 * capabilities).
 */
function assertNamespaced(exposed, upstream, must, may = must) {
  const prefix = `${upstream}__`;
  const byName = new Map(exposed.filter((t) => t.name.startsWith(prefix)).map((t) => [t.name.slice(prefix.length), t]));
  const mayByName = new Map(may.map((t) => [t.name, t]));
  for (const t of must) assert.ok(byName.has(t.name), `${prefix}${t.name} is exposed (exposed: ${[...byName.keys()].join(', ')})`);
  for (const [name, t] of byName) {
    const up = mayByName.get(name);
    assert.ok(up, `${t.name} is exposed but ${upstream} has no tool ${name}`);
    assert.equal(t.description, up.description, `${t.name}: description identical to the upstream's`);
    assert.deepEqual(t.inputSchema, up.inputSchema, `${t.name}: inputSchema identical to the upstream's`);
    assert.deepEqual(t.outputSchema, up.outputSchema, `${t.name}: outputSchema identical to the upstream's`);
  }
  return byName;
}

// ---------------------------------------------------------------------------

describe('proxy over stdio: server-filesystem and server-everything behind one serve', { timeout: 60_000 }, () => {
  let ws;
  let root; // the directory server-filesystem serves
  let fsTap;
  let evTap;
  let s; // serveStdio handle
  let exposed; // tools/list through agentmesh
  const direct = {}; // direct SDK clients of the upstreams
  const made = []; // tool calls made, for the audit check

  const WRITE_MSG = 'e2e: writing through the fs upstream is not allowed';
  const READ_MSG = 'e2e: fs reads are limited to the allowed directory';
  const RES_MSG = 'e2e: features.md is off limits';
  const FEATURES = 'demo://resource/static/document/features.md';
  const ARCHITECTURE = 'demo://resource/static/document/architecture.md';

  async function call(tool, params, expect, upstream, rule) {
    const res = await s.client.callTool({ name: tool, arguments: params }, undefined, REQ);
    made.push({ tool, params, expect, upstream, rule, text: L.resultText(res) });
    return res;
  }

  before(async () => {
    ws = P.proxyWorkspace();
    root = join(ws.dir, 'files');
    mkdirSync(join(root, 'allowed'), { recursive: true });
    mkdirSync(join(root, 'private'), { recursive: true });
    writeFileSync(join(root, 'allowed', 'hello.txt'), 'hello from the allowed directory\n');
    writeFileSync(join(root, 'private', 'other.txt'), 'private data, policy says no\n');
    writeFileSync(
      join(root, 'allowed', 'secrets.txt'),
      `[default]\naws_access_key_id = ${AWS_KEY_ID}\naws_secret_access_key = ${AWS_SECRET}\nregion = eu-west-1\n\ndb admin password: ${PASSWORD}\n`,
    );
    fsTap = P.tapped(ws, 'fs', P.filesystemCmd(root));
    evTap = P.tapped(ws, 'ev', P.everythingCmd());
    ws.configure({
      upstreams: [
        { name: 'fs', argv: fsTap.argv, pin: 'strict' },
        { name: 'ev', argv: evTap.argv, pin: 'new-allowed' },
      ],
      policy: `default_action: allow
policies:
  - name: e2e-proxy
    rules:
      - name: no-fs-writes
        condition: 'upstream == "fs" && upstream_tool == "write_file"'
        action: block
        message: "${WRITE_MSG}"
      - name: fs-reads-under-allowed
        condition: 'upstream == "fs" && upstream_tool in ["read_text_file", "read_file"] && !glob("${root}/allowed/*", params.path)'
        action: block
        message: "${READ_MSG}"
      - name: no-features-doc
        condition: 'method == "resources/read" && uri == "${FEATURES}"'
        action: block
        message: "${RES_MSG}"
`,
    });
    // The upstreams as they are, without agentmesh (server-everything twice:
    // with no client capabilities, and with every capability that unlocks
    // its conditional tools).
    [direct.fs, direct.ev, direct.evAll] = await Promise.all([
      P.directClient(P.filesystemCmd(root)),
      P.directClient(P.everythingCmd()),
      P.directClient(P.everythingCmd(), { capabilities: P.ALL_CLIENT_CAPABILITIES }),
    ]);
    s = await P.serveStdio(ws);
  });

  after(async () => {
    await s?.client.close().catch(() => {});
    await Promise.all(Object.values(direct).map((c) => c.close().catch(() => {})));
    await L.killAll();
    ws?.cleanup();
  });

  test('tools/list: NAME__tool for every upstream tool, schemas and descriptions identical', async () => {
    exposed = await P.settledTools(s, ['fs__', 'ev__']);
    const names = exposed.map((t) => t.name);
    assert.equal(new Set(names).size, names.length, `tool names are unique: ${names.join(', ')}`);
    const fsTools = await P.listAll(direct.fs, 'tools');
    const evTools = await P.listAll(direct.ev, 'tools');
    const evAll = await P.listAll(direct.evAll, 'tools');
    for (const n of ['read_text_file', 'read_file', 'write_file', 'list_allowed_directories']) {
      assert.ok(fsTools.some((t) => t.name === n), `server-filesystem offers ${n}`);
    }
    for (const n of [ECHO, LONG_OP, GET_ENV]) assert.ok(evTools.some((t) => t.name === n), `server-everything offers ${n}`);
    assertNamespaced(exposed, 'fs', fsTools);
    assertNamespaced(exposed, 'ev', evTools, evAll);
    // Everything else is a built-in tool, not an un-namespaced upstream tool.
    const rest = names.filter((n) => !n.startsWith('fs__') && !n.startsWith('ev__'));
    for (const n of rest) assert.ok(L.BUILTIN_TOOLS.includes(n), `${n} is neither namespaced nor built in`);
  });

  test('fs__read_text_file on an allowed file: the upstream result, unchanged', async () => {
    const params = { path: join(root, 'allowed', 'hello.txt') };
    const res = await call('fs__read_text_file', params, 'allowed', 'fs');
    const want = await direct.fs.callTool({ name: 'read_text_file', arguments: params });
    assert.equal(L.resultText(res), 'hello from the allowed directory\n');
    assert.deepEqual(res, want, 'the result is the upstream result (content and structuredContent)');
    // list_allowed_directories: a tool with an output schema and no arguments.
    const dirs = await call('fs__list_allowed_directories', {}, 'allowed', 'fs');
    assert.deepEqual(dirs.structuredContent, { content: `Allowed directories:\n${root}` });
  });

  test('fs__write_file: blocked by the policy; the upstream never sees it; no file', async () => {
    const target = join(root, 'allowed', 'new.txt');
    const res = await call('fs__write_file', { path: target, content: 'should never be written' }, 'blocked', 'fs', 'e2e-proxy/no-fs-writes');
    assertDenied(res, WRITE_MSG, 'fs__write_file');
    assert.equal(existsSync(target), false, `${target} was not created`);
    assert.deepEqual(P.forwardedCalls(fsTap, 'write_file'), [], 'agentmesh did not forward write_file to server-filesystem');
  });

  test('reading outside the allowed sub-directory: blocked by the policy', async () => {
    for (const path of [join(root, 'private', 'other.txt'), join(root, 'allowed', '..', 'private', 'other.txt')]) {
      const res = await call('fs__read_text_file', { path }, 'blocked', 'fs', 'e2e-proxy/fs-reads-under-allowed');
      const text = assertDenied(res, READ_MSG, `fs__read_text_file ${path}`);
      assert.ok(!JSON.stringify(res).includes('private data'), `the file's content is not returned: ${text}`);
    }
    const reads = P.forwardedCalls(fsTap, 'read_text_file').map((m) => m.params.arguments.path);
    assert.ok(!reads.some((p) => p.includes('private')), `no read of private/ reached server-filesystem: ${JSON.stringify(reads)}`);
  });

  test('a file holding secrets: the output is redacted, the secrets never reach the client', async () => {
    const params = { path: join(root, 'allowed', 'secrets.txt') };
    const res = await call('fs__read_text_file', params, 'redacted', 'fs');
    const text = L.resultText(res);
    assert.notEqual(res.isError, true, `not refused: ${text}`);
    assert.match(text, /\[REDACTED:/, `the output carries redaction markers: ${text}`);
    assert.match(text, /aws_access_key_id/, 'the non-secret parts pass through');
    assert.match(text, /region = eu-west-1/, 'the non-secret parts pass through');
    L.assertNoSecrets(JSON.stringify(res), SECRETS, 'the redacted result (content and structuredContent)');
  });

  test('ev__echo: the upstream result, unchanged', async () => {
    const params = { message: 'hello through agentmesh' };
    const res = await call('ev__echo', params, 'allowed', 'ev');
    assert.deepEqual(res, await direct.ev.callTool({ name: ECHO, arguments: params }));
    assert.equal(L.resultText(res), 'Echo: hello through agentmesh');
    // An upstream's own tool error passes through as its error result (and
    // is audited as error, not as a governance block).
    const bad = { a: 'one', b: 2 };
    const err = await call('ev__get-sum', bad, 'error', 'ev');
    assert.deepEqual(err, await direct.ev.callTool({ name: 'get-sum', arguments: bad }));
    assert.equal(err.isError, true);
  });

  test('resources: list and read pass through; a policy refuses one URI with a JSON-RPC error', async () => {
    const want = await P.listAll(direct.ev, 'resources');
    const got = await P.listAll(s.client, 'resources');
    assert.ok(want.some((r) => r.uri === ARCHITECTURE) && want.some((r) => r.uri === FEATURES), 'server-everything lists the docs');
    for (const r of want) {
      assert.deepEqual(got.find((g) => g.uri === r.uri), r, `resources/list through agentmesh has ${r.uri}, unchanged`);
    }
    const read = await s.client.readResource({ uri: ARCHITECTURE }, REQ);
    assert.deepEqual(read, await direct.ev.readResource({ uri: ARCHITECTURE }));
    assert.match(read.contents[0].text, /^# Everything Server/);
    await assertRpcError(s.client.readResource({ uri: FEATURES }, REQ), RES_MSG, `resources/read ${FEATURES}`);
    assert.ok(
      !evTap.messages().some((m) => m.dir === 'in' && m.msg.method === 'resources/read' && m.msg.params?.uri === FEATURES),
      'the refused resources/read never reached server-everything',
    );
  });

  test('prompts: list shows ev__NAME, get passes through', async () => {
    const want = await P.listAll(direct.ev, 'prompts');
    const got = await P.listAll(s.client, 'prompts');
    assert.ok(want.some((p) => p.name === 'args-prompt'), 'server-everything has args-prompt');
    // An argument's `required: false` is the protocol's default: leaving it
    // out says the same thing, so the entries are compared without it.
    const norm = (p) => p && { ...p, arguments: p.arguments?.map(({ required, ...a }) => (required ? { ...a, required } : a)) };
    for (const p of want) {
      assert.deepEqual(norm(got.find((g) => g.name === `ev__${p.name}`)), norm({ ...p, name: `ev__${p.name}` }), `prompts/list has ev__${p.name}`);
    }
    assert.ok(!got.some((g) => g.name === 'args-prompt'), 'upstream prompts are not listed un-namespaced');
    const args = { city: 'Paris', state: 'Île-de-France' };
    const res = await s.client.getPrompt({ name: 'ev__args-prompt', arguments: args }, REQ);
    assert.deepEqual(res, await direct.ev.getPrompt({ name: 'args-prompt', arguments: args }));
    assert.equal(res.messages[0].content.text, "What's weather in Paris, Île-de-France?");
  });

  test('agentmesh tools list: every upstream tool pinned', async () => {
    const r = await P.cli(ws, ['tools', 'list', '--output', 'json']);
    assert.equal(r.code, 0, `tools list exited ${r.code}: ${r.stderr}`);
    const rows = JSON.parse(r.stdout);
    assert.ok(Array.isArray(rows), 'tools list --output json prints an array');
    for (const t of exposed.filter((t) => t.name.startsWith('fs__') || t.name.startsWith('ev__'))) {
      const [upstream, tool] = [t.name.slice(0, 2), t.name.slice(4)];
      const row = rows.find((x) => x.upstream === upstream && x.upstream_tool === tool);
      assert.ok(row, `tools list has ${upstream}/${tool}`);
      assert.equal(row.name, t.name, `${upstream}/${tool} is exposed as ${t.name}`);
      assert.ok(Array.isArray(row.flags), `${t.name} has flags`);
      // Under pin: strict a tool is callable only once approved, and the fs
      // tools were called above.
      if (upstream === 'fs') assert.equal(row.status, 'approved', `${t.name} (pin: strict, served) is approved`);
      else assert.ok(['approved', 'new'].includes(row.status), `${t.name} status ${row.status}`);
    }
  });

  test('audit: every call with its result and upstream; no secret in the log; audit verify passes', async () => {
    await s.client.close();
    await Promise.all(Object.values(direct).map((c) => c.close()));
    // serve stopped its upstreams on the way out (their command lines name
    // the tap script and the fs root, both in ws.dir).
    await L.assertNoProcessesLeft(ws);
    assert.equal(made.length, 8);
    const { raw, entries } = await P.auditJsonl(ws);
    L.assertNoSecrets(raw, SECRETS, 'the audit log');
    L.assertSequence(entries);
    P.assertProxyAudited(entries, made);
    // resources/read and prompts/get are audited too, for ev: the refused
    // read as blocked by its rule, the others as allowed.
    const about = (needle) => entries.filter((e) => e.seq !== undefined && e.action !== 'policy_loaded' && JSON.stringify(e).includes(needle));
    const refused = about(FEATURES);
    assert.equal(refused.length, 1, `one entry for resources/read ${FEATURES}: ${JSON.stringify(refused)}`);
    assert.equal(refused[0].result, 'blocked');
    assert.equal(refused[0].upstream, 'ev');
    assert.ok(refused[0].rules?.includes('e2e-proxy/no-features-doc'), `rules ${JSON.stringify(refused[0].rules)}`);
    assert.ok(refused[0].reason?.includes(RES_MSG), `reason ${JSON.stringify(refused[0].reason)}`);
    for (const needle of [ARCHITECTURE, 'args-prompt']) {
      const got = about(needle);
      assert.equal(got.length, 1, `one entry for ${needle}: ${JSON.stringify(got)}`);
      assert.equal(got[0].result, 'allowed', `${needle}: ${JSON.stringify(got[0])}`);
      assert.equal(got[0].upstream, 'ev', `${needle}: ${JSON.stringify(got[0])}`);
    }
    const v = await P.cli(ws, ['audit', 'verify']);
    assert.equal(v.code, 0, `audit verify exited ${v.code}\nstdout: ${v.stdout}\nstderr: ${v.stderr}`);
    assert.match(v.stdout + v.stderr, /verified/);
  });
});

// ---------------------------------------------------------------------------

describe('proxy over streamable HTTP: server-everything from --upstream', { timeout: 40_000 }, () => {
  let ws;
  let serve;
  let client;
  let wire;
  const direct = {};
  const made = [];
  const ENV_MSG = 'e2e: get-env would leak the environment';

  before(async () => {
    ws = P.proxyWorkspace();
    ws.configure({
      policy: `policies:
  - name: e2e-http
    rules:
      - name: no-env
        condition: 'upstream == "ev" && upstream_tool == "${GET_ENV}"'
        action: block
        message: "${ENV_MSG}"
`,
    });
    // The upstream comes from the command line, split like a shell would.
    const spec = `ev=${P.everythingCmd().join(' ')}`;
    const withUpstream = { ...ws, serveArgs: (...extra) => ws.serveArgs('--upstream', spec, ...extra) };
    [direct.ev, direct.evAll, serve] = await Promise.all([
      P.directClient(P.everythingCmd()),
      P.directClient(P.everythingCmd(), { capabilities: P.ALL_CLIENT_CAPABILITIES }),
      L.startHttpServe(withUpstream),
    ]);
    const transport = new StreamableHTTPClientTransport(new URL(serve.url));
    wire = L.recordTransport(transport);
    client = new Client({ name: 'e2e-proxy-http', version: '1.0.0' });
    await P.withTimeout(client.connect(transport), 20_000, 'connecting over HTTP');
  });

  after(async () => {
    await client?.close().catch(() => {});
    await Promise.all(Object.values(direct).map((c) => c.close().catch(() => {})));
    await L.killAll();
    ws?.cleanup();
  });

  test('tools/list over HTTP: ev__ tools with the upstream schemas', async () => {
    const tools = await P.settledTools({ client, wire }, ['ev__']);
    assertNamespaced(tools, 'ev', await P.listAll(direct.ev, 'tools'), await P.listAll(direct.evAll, 'tools'));
    assert.ok(tools.some((t) => t.name === 'ev__echo'), 'ev__echo is listed');
  });

  test('ev__echo allowed, ev__get-env blocked, both audited for ev', async () => {
    const params = { message: 'over http' };
    const res = await client.callTool({ name: 'ev__echo', arguments: params }, undefined, REQ);
    assert.deepEqual(res, { content: [{ type: 'text', text: 'Echo: over http' }] });
    made.push({ tool: 'ev__echo', params, expect: 'allowed', upstream: 'ev', text: L.resultText(res) });
    const env = await client.callTool({ name: 'ev__get-env', arguments: {} }, undefined, REQ);
    const text = assertDenied(env, ENV_MSG, 'ev__get-env');
    assert.ok(!text.includes(ws.env.HOME), 'the environment is not returned');
    made.push({ tool: 'ev__get-env', params: {}, expect: 'blocked', upstream: 'ev', rule: 'e2e-http/no-env', text });
    const { entries } = await P.auditJsonl(ws);
    P.assertProxyAudited(entries, made);
  });
});

// ---------------------------------------------------------------------------

describe('progress and cancellation through the proxy (serve -- COMMAND)', { timeout: 40_000 }, () => {
  let ws;
  let evTap;
  let s;

  before(async () => {
    ws = P.proxyWorkspace();
    evTap = P.tapped(ws, 'ev', P.everythingCmd());
    ws.configure();
    s = await P.serveStdio(ws, ['--upstream-name', 'ev', '--', ...evTap.argv]);
    const tools = await P.settledTools(s, ['ev__']);
    assert.ok(tools.some((t) => t.name === `ev__${LONG_OP}`), `ev__${LONG_OP} is listed: ${tools.map((t) => t.name).join(', ')}`);
  });

  after(async () => {
    await s?.client.close().catch(() => {});
    await L.killAll();
    ws?.cleanup();
  });

  test('progress: the upstream notifications reach the client with its own token, then the result', async () => {
    const seen = [];
    const started = s.wire.sent.length;
    const res = await s.client.callTool({ name: `ev__${LONG_OP}`, arguments: { duration: 2, steps: 4 } }, undefined, {
      ...REQ,
      onprogress: (p) => seen.push(p),
    });
    assert.deepEqual(res, { content: [{ type: 'text', text: 'Long running operation completed. Duration: 2 seconds, Steps: 4.' }] });
    assert.ok(seen.length >= 2, `at least 2 progress notifications, got ${JSON.stringify(seen)}`);
    for (let i = 1; i < seen.length; i++) assert.ok(seen[i].progress > seen[i - 1].progress, `progress increases: ${JSON.stringify(seen)}`);
    for (const p of seen) assert.equal(p.total, 4, `total is the upstream's: ${JSON.stringify(p)}`);

    // On the wire: every progress notification carried the client's own
    // token, and all of them came before the result (a progress
    // notification after the response references a finished request; the
    // SDK drops it). The wire can hold more than `seen`: the SDK runs
    // notification handlers a microtask later than response handlers, so a
    // notification read in the same chunk as the result is dropped.
    const req = s.wire.sent.slice(started).find((m) => m.method === 'tools/call');
    const token = req.params._meta.progressToken;
    const notes = s.wire.received.filter((m) => m.method === 'notifications/progress');
    assert.ok(notes.length >= seen.length, `${notes.length} progress notifications on the wire, ${seen.length} seen`);
    for (const n of notes) assert.equal(n.params.progressToken, token, `the client's token ${JSON.stringify(token)}: ${JSON.stringify(n)}`);
    const order = s.wire.received.map((m) => (m.method === 'notifications/progress' ? `progress ${m.params.progress}` : m.id === req.id ? 'result' : m.method ?? m.id));
    assert.ok(notes.every((n) => s.wire.received.indexOf(n) < s.wire.received.findIndex((m) => m.id === req.id)), `progress came before the result: ${order.join(', ')}`);
    // agentmesh asked the upstream for progress.
    const fwd = P.forwardedCalls(evTap, LONG_OP);
    assert.equal(fwd.length, 1, 'the call was forwarded once');
    assert.notEqual(fwd[0].params._meta?.progressToken, undefined, `the forwarded call has a progressToken: ${JSON.stringify(fwd[0])}`);
  });

  test('cancellation: forwarded to the upstream, audited as error, serving continues', async () => {
    const ac = new AbortController();
    const params = { duration: 30, steps: 30 };
    let first;
    const gotProgress = new Promise((ok) => (first = ok));
    const reason = new Error('e2e: user cancelled');
    const started = s.wire.sent.length;
    const lastSeq = Math.max(-1, ...(await P.auditJsonl(ws)).entries.map((e) => e.seq));
    const pending = s.client.callTool({ name: `ev__${LONG_OP}`, arguments: params }, undefined, {
      ...REQ,
      signal: ac.signal,
      onprogress: (p) => first(p),
    });
    pending.catch(() => {}); // observed below
    await P.withTimeout(gotProgress, 10_000, 'the first progress notification');
    ac.abort(reason);
    const receivedAtCancel = s.wire.received.length;
    // The SDK rejects an aborted request at once, wrapping the abort reason.
    await assert.rejects(P.withTimeout(pending, 5000, 'the aborted call'), (e) => {
      assert.ok(e.message.includes(reason.message), `the client saw its own abort: ${e.message}`);
      return true;
    });
    const req = s.wire.sent.slice(started).find((m) => m.method === 'tools/call');
    assert.ok(
      s.wire.sent.some((m) => m.method === 'notifications/cancelled' && m.params.requestId === req.id),
      'the SDK client sent notifications/cancelled',
    );

    // agentmesh cancels the forwarded request at the upstream.
    const fwd = P.forwardedCalls(evTap, LONG_OP).filter((m) => m.params.arguments?.duration === 30);
    assert.equal(fwd.length, 1, 'the call was forwarded once');
    const cancelled = await P.poll(() =>
      evTap.messages().find((m) => m.dir === 'in' && m.msg.method === 'notifications/cancelled' && m.msg.params?.requestId === fwd[0].id),
    );
    assert.ok(cancelled, `agentmesh sent notifications/cancelled for upstream request ${JSON.stringify(fwd[0].id)}; it sent: ${JSON.stringify(evTap.messages().filter((m) => m.dir === 'in').map((m) => m.msg.method ?? m.msg.id))}`);

    // The call is audited (once, the only ev__LONG_OP entry since the call
    // was made) as an error whose reason says it was cancelled, with its
    // params like any other call (checked at the end).
    let audited = [];
    await P.poll(async () => {
      audited = L.invocations((await P.auditJsonl(ws)).entries).filter((e) => e.seq > lastSeq && e.tool === `ev__${LONG_OP}`);
      return audited.length > 0;
    });
    assert.equal(audited.length, 1, `one audit entry for the cancelled call: ${JSON.stringify(audited)}`);
    const entry = audited[0];
    assert.equal(entry.result, 'error', `audited as error: ${JSON.stringify(entry)}`);
    assert.match(entry.reason ?? '', /cancel/i, `the reason mentions cancellation: ${JSON.stringify(entry)}`);
    assert.equal(entry.upstream, 'ev');

    // And the server keeps serving.
    const res = await s.client.callTool({ name: 'ev__echo', arguments: { message: 'still here' } }, undefined, REQ);
    assert.equal(L.resultText(res), 'Echo: still here');

    // server-everything ignores the cancellation and keeps sending progress
    // for the upstream request; none of it may reach the client for the
    // request it cancelled.
    const upToken = fwd[0].params._meta?.progressToken;
    const late = await P.poll(
      () => evTap.messages().some((m) => m.dir === 'out' && m.msg.method === 'notifications/progress' && m.msg.params.progressToken === upToken && m.msg.params.progress >= 2),
      5000,
    );
    assert.ok(late, 'server-everything sent progress after the cancellation');
    const token = req.params._meta.progressToken;
    const after = s.wire.received.slice(receivedAtCancel).filter((m) => m.method === 'notifications/progress' && m.params.progressToken === token);
    assert.deepEqual(after, [], 'no progress for the cancelled request reached the client');

    // Last, so that the checks above run whatever this says.
    assert.deepEqual(entry.params, params, `the cancelled call's params are audited: ${JSON.stringify(entry)}`);
  });
});
