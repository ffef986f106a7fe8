// Shared helpers for the end-to-end tests of `agentmesh serve` with real
// third-party MCP clients: temporary workspaces (HOME, XDG_CONFIG_HOME and
// agentmesh.yaml inside one temp dir), a loopback stand-in API, running the
// agentmesh CLI, reading the audit log, and process bookkeeping so that no
// child outlives its test.
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { createServer as createNetServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const E2E_DIR = dirname(fileURLToPath(import.meta.url));

/** The agentmesh binary under test: $AGENTMESH_BIN, else e2e/.bin/agentmesh. */
export const BIN = resolve(process.env.AGENTMESH_BIN || join(E2E_DIR, '.bin', 'agentmesh'));
if (!existsSync(BIN)) {
  throw new Error(
    `agentmesh binary not found at ${BIN}: build it with ` +
      '`go build -o e2e/.bin/agentmesh ./cmd/agentmesh` or set AGENTMESH_BIN',
  );
}

/**
 * The built-in tools. `serve` offers filesystem_write only when a mount is
 * read-write (makeWorkspace({scratch: true})); the other five always.
 */
export const BUILTIN_TOOLS = [
  'api_call',
  'code_execute',
  'database_query',
  'filesystem_list',
  'filesystem_read',
  'filesystem_write',
];

/** Inspector CLI entry (the `mcp-inspector` bin of @modelcontextprotocol/inspector). */
export const INSPECTOR_CLI = join(E2E_DIR, 'node_modules', '@modelcontextprotocol', 'inspector', 'cli', 'build', 'cli.js');

// ---------------------------------------------------------------------------
// Stand-in API

/**
 * A loopback HTTP server standing in for a third-party API.
 * GET /v1/forecast?city=X answers JSON; `requests` records every request.
 */
export async function startApi() {
  const requests = [];
  const server = createServer((req, res) => {
    requests.push({ method: req.method, url: req.url });
    const u = new URL(req.url, 'http://127.0.0.1');
    if (u.pathname === '/v1/forecast') {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ city: u.searchParams.get('city'), forecast: 'sunny', temperature_c: 21 }));
      return;
    }
    res.writeHead(404, { 'content-type': 'text/plain' });
    res.end('not found');
  });
  await new Promise((ok, fail) => {
    server.once('error', fail);
    server.listen(0, '127.0.0.1', ok);
  });
  const { port } = server.address();
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    close: () =>
      new Promise((ok) => {
        server.closeAllConnections?.();
        server.close(() => ok());
      }),
  };
}

/** A TCP port that was free a moment ago on 127.0.0.1. */
export async function freePort() {
  const srv = createNetServer();
  await new Promise((ok, fail) => {
    srv.once('error', fail);
    srv.listen(0, '127.0.0.1', ok);
  });
  const { port } = srv.address();
  await new Promise((ok) => srv.close(ok));
  return port;
}

// ---------------------------------------------------------------------------
// Workspaces

/**
 * A temporary directory holding agentmesh.yaml, the state directory
 * (DIR/.agentmesh) and a private HOME / XDG_CONFIG_HOME (the audit witness
 * lives under the latter).
 */
export function makeWorkspace({ apiUrl = 'http://127.0.0.1:9', name = 'e2e-server', scratch = false } = {}) {
  const dir = mkdtempSync(join(tmpdir(), 'agentmesh-e2e-'));
  const home = join(dir, 'home');
  mkdirSync(join(home, '.config'), { recursive: true, mode: 0o700 });
  const config = join(dir, 'agentmesh.yaml');
  // scratch: besides the read-only sample data at /data, a read-write root
  // at /scratch (DIR/scratch on the host), so filesystem_write can succeed.
  if (scratch) mkdirSync(join(dir, 'scratch'));
  const scratchScope = scratch ? '\n  - {resources: ["filesystem:/scratch/*"], actions: [read, list, write], ttl_minutes: 15}' : '';
  const fsTool = scratch
    ? `
  filesystem:
    roots:
      - {path: "\${state_dir}/data", mount: /data, access: read}
      - {path: ./scratch, mount: /scratch, access: read-write}`
    : '';
  writeFileSync(
    config,
    `# written by the agentmesh end-to-end tests
agent: {name: ${name}, sponsor: e2e@example.com}
policies: {paths: []}
scopes:
  - {resources: ["filesystem:/data/*"], actions: [read, list, write], ttl_minutes: 15}
  - {resources: ["database:users"], actions: [query], ttl_minutes: 15}
  - {resources: ["api:${apiUrl}/*"], actions: [call], ttl_minutes: 15}
  - {resources: ["code:starlark"], actions: [execute], ttl_minutes: 15}${scratchScope}
tools:
  api:
    endpoints: [{url: "${apiUrl}/*", methods: [GET], allow_private: true}]${fsTool}
`,
    { mode: 0o600 },
  );
  const env = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (k.startsWith('AGENTMESH_') || k === 'HOME' || k === 'XDG_CONFIG_HOME') continue;
    env[k] = v;
  }
  Object.assign(env, { HOME: home, XDG_CONFIG_HOME: join(home, '.config'), NO_COLOR: '1' });
  return {
    dir,
    config,
    env,
    stateDir: join(dir, '.agentmesh'),
    scratchDir: join(dir, 'scratch'),
    /** argv for `agentmesh serve` on this workspace. */
    serveArgs: (...extra) => ['--config', config, 'serve', ...extra],
    cleanup: () => rmSync(dir, { recursive: true, force: true }),
  };
}

// ---------------------------------------------------------------------------
// Processes

const children = new Set();
// Safety net: whatever happens to the test file, its children die with it.
process.on('exit', () => {
  for (const c of children) {
    try {
      c.kill('SIGKILL');
    } catch {
      // already gone
    }
  }
});

/** Spawn a child that is tracked and killed by killAll(). */
export function spawnTracked(cmd, args, opts = {}) {
  const child = spawn(cmd, args, { stdio: ['pipe', 'pipe', 'pipe'], ...opts });
  children.add(child);
  child.once('exit', () => children.delete(child));
  return child;
}

/** Kill one child (SIGTERM, then SIGKILL after `graceMs`) and wait for it. */
export async function killChild(child, graceMs = 3000) {
  if (!child || child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((ok) => child.once('exit', ok));
  child.kill('SIGTERM');
  const t = setTimeout(() => child.kill('SIGKILL'), graceMs);
  await exited;
  clearTimeout(t);
}

/** Kill every child spawned through spawnTracked that is still running. */
export async function killAll() {
  await Promise.all([...children].map((c) => killChild(c)));
}

/** The pids of live processes whose command line mentions `needle` (Linux /proc). */
export function processesMentioning(needle) {
  const out = [];
  if (!existsSync('/proc/self/cmdline')) return out; // not Linux: nothing to check
  for (const pid of readdirSync('/proc')) {
    if (!/^\d+$/.test(pid)) continue;
    try {
      const cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
      if (cmdline.includes(needle)) out.push(Number(pid));
    } catch {
      // gone meanwhile
    }
  }
  return out;
}

/**
 * Run the agentmesh CLI on a workspace: `agentmesh --config CFG ARGS...`.
 * Resolves to {code, stdout, stderr}; never rejects on a non-zero exit.
 */
export function runCli(ws, args, { timeoutMs = 60_000 } = {}) {
  return runProcess(BIN, ['--config', ws.config, ...args], { env: ws.env, timeoutMs });
}

/** Run any command to completion. Resolves to {code, stdout, stderr}. */
export function runProcess(cmd, args, { env = process.env, timeoutMs = 60_000, cwd } = {}) {
  return new Promise((ok) => {
    const child = execFile(
      cmd,
      args,
      { env, cwd, timeout: timeoutMs, killSignal: 'SIGKILL', maxBuffer: 64 << 20 },
      (err, stdout, stderr) => {
        children.delete(child);
        const code = err ? (typeof err.code === 'number' ? err.code : -1) : 0;
        ok({ code, stdout, stderr, signal: err?.signal ?? null });
      },
    );
    children.add(child);
  });
}

/**
 * Wait until `stream` has produced a line matching `re`; resolves to the
 * match. Rejects after timeoutMs with everything seen so far.
 */
export function waitForLine(stream, re, timeoutMs = 30_000) {
  return new Promise((ok, fail) => {
    let seen = '';
    const onData = (chunk) => {
      seen += chunk.toString();
      const m = seen.match(re);
      if (m) {
        cleanup();
        ok(m);
      }
    };
    const onEnd = () => {
      cleanup();
      fail(new Error(`stream ended before ${re}; saw:\n${seen}`));
    };
    const t = setTimeout(() => {
      cleanup();
      fail(new Error(`timed out after ${timeoutMs} ms waiting for ${re}; saw:\n${seen}`));
    }, timeoutMs);
    function cleanup() {
      clearTimeout(t);
      stream.off('data', onData);
      stream.off('end', onEnd);
    }
    stream.on('data', onData);
    stream.on('end', onEnd);
  });
}

/**
 * Start `agentmesh serve --http 127.0.0.1:PORT` on a free port and wait for
 * its "listening on http://..." line. Resolves to {child, url, stderr()}.
 */
export async function startHttpServe(ws) {
  let lastErr;
  for (let attempt = 0; attempt < 3; attempt++) {
    const port = await freePort();
    const child = spawnTracked(BIN, ws.serveArgs('--http', `127.0.0.1:${port}`), { env: ws.env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (d) => (stderr += d));
    let stdout = '';
    child.stdout.on('data', (d) => (stdout += d));
    try {
      const m = await waitForLine(child.stderr, /listening on (http:\/\/\S+)/, 30_000);
      return { child, url: m[1], stderr: () => stderr, stdout: () => stdout };
    } catch (e) {
      lastErr = new Error(`${e.message}\nstderr: ${stderr}`);
      await killChild(child);
    }
  }
  throw lastErr;
}

// ---------------------------------------------------------------------------
// Results and audit

/** Concatenated text of a CallToolResult's text content blocks. */
export function resultText(res) {
  return (res?.content ?? [])
    .filter((c) => c.type === 'text')
    .map((c) => c.text)
    .join('\n');
}

/**
 * How a client sees a tool result: blocked (isError), redacted (contains a
 * [REDACTED:...] marker or a withheld notice) or allowed.
 */
export function classify(res) {
  const text = resultText(res);
  if (res.isError) return 'blocked';
  if (text.includes('[REDACTED:') || text.includes('[WITHHELD')) return 'redacted';
  return 'allowed';
}

/** All audit entries of a workspace (`audit --output json --limit 0`). */
export async function readAudit(ws) {
  const r = await runCli(ws, ['audit', '--output', 'json', '--limit', '0']);
  assert.equal(r.code, 0, `agentmesh audit failed (${r.code}): ${r.stderr}`);
  let entries;
  try {
    entries = JSON.parse(r.stdout);
  } catch (e) {
    assert.fail(`agentmesh audit --output json printed invalid JSON: ${e.message}\n${r.stdout.slice(0, 2000)}`);
  }
  assert.ok(Array.isArray(entries), 'audit --output json prints an array');
  return entries;
}

/** Tool-invocation entries only. */
export function invocations(entries) {
  return entries.filter((e) => e.action === 'tool_invocation');
}

/**
 * The tool_invocation entries for `tool` whose params are exactly `params`
 * (the same keys; values compared as strings). With params omitted, every
 * invocation of `tool`.
 */
export function findCalls(entries, tool, params) {
  return invocations(entries).filter((e) => {
    if (e.tool !== tool) return false;
    if (params === undefined) return true;
    const got = e.params ?? {};
    const keys = Object.keys(params);
    return (
      Object.keys(got).length === keys.length && keys.every((k) => k in got && String(got[k]) === String(params[k]))
    );
  });
}

/**
 * Assert that each expected call appears in the audit log exactly as many
 * times as it was made, with the expected result. `calls` is a list of
 * {tool, params, expect} where params are the arguments sent.
 */
export function assertAudited(entries, calls) {
  const seqs = new Set();
  // Group identical calls so repeated calls are counted.
  const groups = new Map();
  for (const c of calls) {
    const key = JSON.stringify([c.tool, c.params, c.expect]);
    const prev = groups.get(key);
    groups.set(key, { ...(prev ?? c), n: (prev?.n ?? 0) + 1 });
  }
  for (const c of groups.values()) {
    const match = findCalls(entries, c.tool, c.params);
    assert.equal(
      match.length,
      c.n,
      `${c.tool} ${JSON.stringify(c.params)}: want ${c.n} audit entr${c.n === 1 ? 'y' : 'ies'}, got ${match.length}: ` +
        JSON.stringify(match.map((e) => ({ seq: e.seq, result: e.result }))),
    );
    for (const e of match) {
      assert.equal(e.result, c.expect, `${c.tool} ${JSON.stringify(c.params)} audited as ${e.result} (seq ${e.seq}, reason ${e.reason}), want ${c.expect}`);
      assert.equal(typeof e.seq, 'number');
      assert.equal(typeof e.trust_score, 'number', `seq ${e.seq} has a trust_score`);
      if (c.expect === 'blocked') {
        assert.ok(e.reason, `blocked seq ${e.seq} has a reason`);
        // A denial reaches the client as a tool result carrying the reason.
        if (c.text !== undefined) {
          assert.ok(c.text.includes(e.reason), `the client saw the audited reason ${JSON.stringify(e.reason)}; got ${JSON.stringify(c.text)}`);
        }
      }
      seqs.add(e.seq);
    }
  }
  return seqs;
}

/** Assert the audit log is append-only and well formed: seq 1..n, no gaps. */
export function assertSequence(entries) {
  assert.ok(entries.length > 0, 'audit log is not empty');
  entries.forEach((e, i) => assert.equal(e.seq, entries[0].seq + i, `audit seq ${e.seq} at index ${i}: no gaps`));
  for (const e of entries) {
    assert.ok(['allowed', 'blocked', 'redacted', 'error', undefined, null, ''].includes(e.result), `seq ${e.seq}: result ${e.result}`);
  }
}

/** `agentmesh audit verify` passes. */
export async function assertVerified(ws) {
  const r = await runCli(ws, ['audit', 'verify']);
  assert.equal(r.code, 0, `audit verify exited ${r.code}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`);
  assert.match(r.stdout + r.stderr, /verified/);
  return r;
}

/** The sample files zero-config serve writes under /data, and the SQL the tests use. */
export const CASES = {
  readAllowed: { tool: 'filesystem_read', params: { path: '/data/reports/q1.csv' }, expect: 'allowed' },
  readPII: { tool: 'filesystem_read', params: { path: '/data/users.json' }, expect: 'redacted' },
  readSecret: { tool: 'filesystem_read', params: { path: '/data/notes/credentials.txt' }, expect: 'redacted' },
  readEtcHosts: { tool: 'filesystem_read', params: { path: '/etc/hosts' }, expect: 'blocked' },
  readTraversal: { tool: 'filesystem_read', params: { path: '/data/../etc/passwd' }, expect: 'blocked' },
  readDotEnv: { tool: 'filesystem_read', params: { path: '/data/config/.env' }, expect: 'blocked' },
  list: { tool: 'filesystem_list', params: { path: '/data' }, expect: 'allowed' },
  write: { tool: 'filesystem_write', params: { path: '/data/reports/new.txt', content: 'hello' }, expect: 'blocked' },
  // Needs makeWorkspace({scratch: true}).
  writeScratch: { tool: 'filesystem_write', params: { path: '/scratch/note.txt', content: 'written by e2e' }, expect: 'allowed' },
  readScratch: { tool: 'filesystem_read', params: { path: '/scratch/note.txt' }, expect: 'allowed' },
  select: { tool: 'database_query', params: { query: 'SELECT id, name, role FROM users ORDER BY id' }, expect: 'allowed' },
  drop: { tool: 'database_query', params: { query: 'DROP TABLE users' }, expect: 'blocked' },
  code: { tool: 'code_execute', params: { code: 'print(1+1)' }, expect: 'allowed' },
  apiAllowed: (api) => ({ tool: 'api_call', params: { url: `${api}/v1/forecast?city=Paris` }, expect: 'allowed' }),
  apiBlocked: { tool: 'api_call', params: { url: 'https://api.example.com/x' }, expect: 'blocked' },
};

/**
 * The sensitive strings in the zero-config sample data (read from the files
 * serve wrote under DIR/.agentmesh/data): the fake password and API key of
 * notes/credentials.txt, the e-mail addresses of users.json and the values
 * of config/.env. None of them may ever reach a client or the audit log.
 */
export function sampleSecrets(ws) {
  const data = join(ws.stateDir, 'data');
  const creds = readFileSync(join(data, 'notes', 'credentials.txt'), 'utf8');
  const password = creds.match(/password:\s*(\S+)/)?.[1];
  const apiKey = creds.match(/api_key=(\S+)/)?.[1];
  assert.ok(password && apiKey, `credentials.txt holds a password and an api_key:\n${creds}`);
  const emails = JSON.parse(readFileSync(join(data, 'users.json'), 'utf8'))
    .map((u) => u.email)
    .filter(Boolean);
  assert.ok(emails.length > 0, 'users.json holds e-mail addresses');
  const env = readFileSync(join(data, 'config', '.env'), 'utf8')
    .split('\n')
    .filter((l) => /^[A-Z_]+=/.test(l))
    .map((l) => l.slice(l.indexOf('=') + 1));
  return { password, apiKey, emails, env, all: [password, apiKey, ...emails, ...env] };
}

/** Assert that none of `secrets` occurs in `text`. */
export function assertNoSecrets(text, secrets, what) {
  for (const s of secrets) assert.ok(!text.includes(s), `${what} leaks ${JSON.stringify(s)}`);
}

/** Assert no live process mentions the workspace (serve, probes, sandboxes). */
export async function assertNoProcessesLeft(ws, waitMs = 15_000) {
  const deadline = Date.now() + waitMs;
  let left = processesMentioning(ws.dir);
  while (left.length > 0 && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 100));
    left = processesMentioning(ws.dir);
  }
  assert.deepEqual(
    left.map((pid) => `${pid}: ${safeCmdline(pid)}`),
    [],
    'no agentmesh process of this workspace is left running',
  );
}

function safeCmdline(pid) {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').replaceAll('\0', ' ');
  } catch {
    return '(gone)';
  }
}

/**
 * The lifecycle and invocation checks every client's audit test shares:
 * seq without gaps, the identity/credential/policy lifecycle entries, each
 * call once with its expected result, the unknown tool as blocked, nothing
 * else audited as a tool invocation, the client's name recorded, and no
 * sample secret anywhere in the log.
 */
export async function checkAudit(ws, { calls, unknownTools = [], clientName, secrets = [] }) {
  const r = await runCli(ws, ['audit', '--output', 'json', '--limit', '0']);
  assert.equal(r.code, 0, `agentmesh audit failed (${r.code}): ${r.stderr}`);
  assertNoSecrets(r.stdout, secrets, 'the audit log');
  const entries = JSON.parse(r.stdout);
  assertSequence(entries);
  const actions = new Set(entries.map((e) => e.action));
  for (const a of ['identity_created', 'credential_issued', 'policy_loaded']) {
    assert.ok(actions.has(a), `audit has a ${a} entry (actions: ${[...actions].join(', ')})`);
  }
  assertAudited(entries, calls);
  for (const name of unknownTools) {
    const m = findCalls(entries, name);
    assert.equal(m.length, 1, `unknown tool ${name} audited once, got ${m.length}`);
    assert.equal(m[0].result, 'blocked', `unknown tool ${name} audited as blocked`);
  }
  const inv = invocations(entries);
  assert.equal(inv.length, calls.length + unknownTools.length, 'no tool invocation audited beyond the calls made');
  if (clientName) {
    for (const e of inv) assert.equal(e.client, clientName, `seq ${e.seq} records the client name`);
  }
  // Blocked calls lower the trust score: a trust_changed entry follows.
  if (calls.some((c) => c.expect === 'blocked')) {
    assert.ok(actions.has('trust_changed'), 'blocked calls produced a trust_changed entry');
  }
  return entries;
}

/**
 * Call one case through an SDK-shaped client (`client.callTool({name,
 * arguments})`, as in @modelcontextprotocol/sdk 1.x and
 * @modelcontextprotocol/client 2.x), assert the result the client sees, and
 * record the call in `made` for the audit check.
 */
export async function callCase(client, c, made) {
  const res = await client.callTool({ name: c.tool, arguments: c.params });
  const text = resultText(res);
  const got = classify(res);
  made.push({ ...c, text });
  assert.equal(got, c.expect, `${c.tool} ${JSON.stringify(c.params)}: want ${c.expect}, got ${got}: ${text.slice(0, 300)}`);
  assert.ok(text.length > 0, `${c.tool} ${JSON.stringify(c.params)} returned text content`);
  if (c.expect === 'redacted') assert.match(text, /\[REDACTED:/);
  return { res, text };
}

/**
 * Assert a tools/list result: exactly the built-in tools the workspace
 * offers (filesystem_write only with a read-write mount), each with an
 * object input schema.
 */
export function assertBuiltinTools(tools, { writable = false } = {}) {
  const want = BUILTIN_TOOLS.filter((n) => writable || n !== 'filesystem_write');
  assert.deepEqual(tools.map((t) => t.name).sort(), want);
  const required = {
    api_call: 'url',
    code_execute: 'code',
    database_query: 'query',
    filesystem_list: 'path',
    filesystem_read: 'path',
    filesystem_write: 'path',
  };
  for (const t of tools) {
    assert.ok(t.description, `${t.name} has a description`);
    assert.equal(t.inputSchema?.type, 'object', `${t.name} input schema is an object`);
    assert.ok(t.inputSchema.properties?.[required[t.name]], `${t.name} input schema has ${required[t.name]}`);
    assert.ok(t.inputSchema.required?.includes(required[t.name]), `${t.name} requires ${required[t.name]}`);
  }
}

/**
 * Record every JSON-RPC message a client transport sends and receives
 * (wraps send, and onmessage once the client has installed it at start).
 */
export function recordTransport(transport) {
  const sent = [];
  const received = [];
  const send = transport.send.bind(transport);
  transport.send = (msg, ...rest) => {
    sent.push(msg);
    return send(msg, ...rest);
  };
  const start = transport.start.bind(transport);
  transport.start = async () => {
    const onmessage = transport.onmessage;
    transport.onmessage = (msg, ...rest) => {
      received.push(msg);
      return onmessage?.(msg, ...rest);
    };
    return start();
  };
  return { sent, received };
}

/** Upper bound for one describe() block: a hung server fails the suite instead of stalling CI. */
export const SUITE_TIMEOUT_MS = 150_000;
