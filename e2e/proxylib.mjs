// Helpers for the upstream-proxy end-to-end tests (proxy.test.mjs): the real
// upstream MCP servers installed from npm (server-everything and
// server-filesystem, started with node from node_modules: nothing is fetched
// at test time), workspaces whose agentmesh.yaml lists upstreams and a policy
// file, a "tap" that records the JSON-RPC traffic between agentmesh and an
// upstream, direct SDK clients for the upstreams (to compare against), and
// the audit log as `agentmesh audit --output jsonl` prints it.
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readFileSync, realpathSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';

import * as L from './lib.mjs';

const MCP = join(L.E2E_DIR, 'node_modules', '@modelcontextprotocol');

/** server-everything's entry; its first argument is the transport ("stdio"). */
export const EVERYTHING = join(MCP, 'server-everything', 'dist', 'index.js');
/** server-filesystem's entry; its arguments are the allowed directories. */
export const FILESYSTEM = join(MCP, 'server-filesystem', 'dist', 'index.js');
for (const f of [EVERYTHING, FILESYSTEM]) {
  if (!existsSync(f)) throw new Error(`${f} is missing: run npm ci in e2e/`);
}

/** fixture-server.mjs: every feature the conformance suite exercises (stdio; --http PORT). */
export const FIXTURE = join(L.E2E_DIR, 'fixture-server.mjs');

/** The node binary running the tests: upstreams are started with it. */
export const NODE = process.execPath;

/** argv of server-everything over stdio. */
export const everythingCmd = () => [NODE, EVERYTHING, 'stdio'];
/** argv of server-filesystem allowing `dirs`. */
export const filesystemCmd = (...dirs) => [NODE, FILESYSTEM, ...dirs];

// ---------------------------------------------------------------------------
// Workspaces

/**
 * A workspace (lib.mjs makeWorkspace: HOME and XDG_CONFIG_HOME inside a temp
 * dir). ws.configure({upstreams, policy}) writes its agentmesh.yaml:
 * `upstreams` ({name, argv, pin?}) and, if `policy` (YAML text) is given,
 * that policy file as the only one in force. The built-in tools keep the
 * embedded defaults. serveArgs and cli() pass --config and --state-dir.
 */
export function proxyWorkspace({ name = 'e2e-proxy' } = {}) {
  const ws = L.makeWorkspace({ name });
  ws.dir = realpathSync(ws.dir);
  ws.config = join(ws.dir, 'agentmesh.yaml');
  ws.stateDir = join(ws.dir, '.agentmesh');
  ws.configure = ({ upstreams = [], policy } = {}) => {
    let policyPaths = '[]';
    if (policy !== undefined) {
      writeFileSync(join(ws.dir, 'policy.yaml'), policy);
      policyPaths = '[policy.yaml]';
    }
    const ups = upstreams.map((u) => {
      const [command, ...args] = u.argv;
      return [
        `  - name: ${u.name}`,
        `    command: ${JSON.stringify(command)}`,
        `    args: ${JSON.stringify(args)}`,
        ...(u.pin ? [`    pin: ${u.pin}`] : []),
      ].join('\n');
    });
    writeFileSync(
      ws.config,
      `# written by the agentmesh proxy end-to-end tests
agent: {name: ${name}, sponsor: e2e@example.com}
policies: {paths: ${policyPaths}}
upstreams:${ups.length ? '\n' + ups.join('\n') : ' []'}
`,
      { mode: 0o600 },
    );
  };
  ws.configure();
  ws.globalArgs = () => ['--config', ws.config, '--state-dir', ws.stateDir];
  ws.serveArgs = (...extra) => [...ws.globalArgs(), 'serve', ...extra];
  return ws;
}

/** `agentmesh --config C --state-dir S ARGS...` → {code, stdout, stderr}. */
export function cli(ws, args, opts) {
  return L.runProcess(L.BIN, [...ws.globalArgs(), ...args], { env: ws.env, ...opts });
}

// ---------------------------------------------------------------------------
// The tap: a transparent stdio relay between agentmesh and an upstream that
// logs every JSON-RPC line in both directions, so a test can see what
// agentmesh forwarded (or did not forward) to the upstream.

const TAP_SOURCE = `// written by proxylib.mjs: stdio relay that logs JSON-RPC lines
import { spawn } from 'node:child_process';
import { appendFileSync } from 'node:fs';
const [log, cmd, ...args] = process.argv.slice(2);
const child = spawn(cmd, args, { stdio: ['pipe', 'pipe', 'inherit'] });
function tee(src, dst, dir) {
  let buf = '';
  src.setEncoding('utf8');
  src.on('data', (d) => {
    buf += d;
    let i;
    while ((i = buf.indexOf('\\n')) >= 0) {
      const line = buf.slice(0, i);
      buf = buf.slice(i + 1);
      if (line.trim()) appendFileSync(log, JSON.stringify({ dir, t: Date.now(), line }) + '\\n');
    }
    dst.write(d);
  });
}
child.stdin.on('error', () => {});
process.stdout.on('error', () => {});
tee(process.stdin, child.stdin, 'in');
tee(child.stdout, process.stdout, 'out');
process.stdin.on('end', () => child.stdin.end());
for (const sig of ['SIGTERM', 'SIGINT', 'SIGHUP']) process.on(sig, () => child.kill(sig));
child.on('exit', (code, sig) => process.exit(code ?? (sig ? 128 : 1)));
`;

/**
 * Wrap an upstream argv in the tap. Returns {argv, log, messages()} where
 * messages() parses the log: [{dir: 'in'|'out', msg}] ('in' is what
 * agentmesh sent to the upstream, 'out' what the upstream answered).
 */
export function tapped(ws, label, argv) {
  const dir = join(ws.dir, 'taps');
  mkdirSync(dir, { recursive: true });
  const script = join(dir, 'tap.mjs');
  if (!existsSync(script)) writeFileSync(script, TAP_SOURCE);
  const log = join(dir, `${label}.jsonl`);
  writeFileSync(log, '');
  return {
    argv: [NODE, script, log, ...argv],
    log,
    messages: () =>
      readFileSync(log, 'utf8')
        .split('\n')
        .filter(Boolean)
        .map((l) => {
          const { dir: d, line } = JSON.parse(l);
          let msg;
          try {
            msg = JSON.parse(line);
          } catch {
            msg = { unparsable: line };
          }
          return { dir: d, msg };
        }),
  };
}

/** The tools/call requests agentmesh forwarded through a tap, optionally for one upstream tool. */
export function forwardedCalls(tap, name) {
  return tap
    .messages()
    .filter((m) => m.dir === 'in' && m.msg.method === 'tools/call' && (name === undefined || m.msg.params?.name === name))
    .map((m) => m.msg);
}

// ---------------------------------------------------------------------------
// Clients

/**
 * An SDK client connected straight to an upstream (no agentmesh), to learn
 * what the upstream itself lists and answers.
 */
export async function directClient(argv, { capabilities = {}, name = 'e2e-direct' } = {}) {
  const [command, ...args] = argv;
  const transport = new StdioClientTransport({ command, args, stderr: 'pipe' });
  transport.stderr.on('data', () => {});
  const client = new Client({ name, version: '1.0.0' }, { capabilities });
  await client.connect(transport);
  return client;
}

/**
 * The client capabilities that make server-everything register all of its
 * conditional tools (roots, sampling, elicitation, and their task variants).
 */
export const ALL_CLIENT_CAPABILITIES = {
  roots: { listChanged: true },
  sampling: {},
  elicitation: { form: {}, url: {} },
  tasks: { requests: { sampling: { createMessage: {} }, elicitation: { create: {} } } },
};

/** `agentmesh serve ARGS` over stdio with an SDK client; records the wire traffic. */
export async function serveStdio(ws, extra = [], { clientName = 'e2e-proxy-stdio' } = {}) {
  const transport = new StdioClientTransport({ command: L.BIN, args: ws.serveArgs(...extra), env: ws.env, stderr: 'pipe' });
  let stderr = '';
  transport.stderr.on('data', (d) => (stderr += d));
  const wire = L.recordTransport(transport);
  const client = new Client({ name: clientName, version: '1.0.0' });
  const errors = [];
  client.onerror = (e) => errors.push(e);
  try {
    await withTimeout(client.connect(transport), 30_000, 'connecting to agentmesh serve');
  } catch (e) {
    await client.close().catch(() => {});
    e.message += `\nserve stderr:\n${stderr}`;
    throw e;
  }
  return { client, transport, wire, errors, stderr: () => stderr };
}

/**
 * tools/list as a client that follows the protocol sees it once the
 * upstreams are up: the first listing, or, if some `prefixes` have no tool
 * in it yet, the listing after the server's next
 * notifications/tools/list_changed (waiting up to `waitMs`). A server that
 * lists upstream tools late without telling the client fails here.
 */
export async function settledTools(s, prefixes, waitMs = 10_000) {
  const complete = (tools) => prefixes.every((p) => tools.some((t) => t.name.startsWith(p)));
  const changed = () => s.wire.received.filter((m) => m.method === 'notifications/tools/list_changed').length;
  let seen = changed();
  let tools = await listAll(s.client, 'tools');
  const deadline = Date.now() + waitMs;
  while (!complete(tools) && Date.now() < deadline) {
    if (changed() > seen) {
      seen = changed();
      tools = await listAll(s.client, 'tools');
      continue;
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  return tools;
}

/** Every page of tools/list, resources/list or prompts/list. */
export async function listAll(client, what) {
  const fn = { tools: 'listTools', resources: 'listResources', prompts: 'listPrompts' }[what];
  const out = [];
  let cursor;
  for (let page = 0; page < 100; page++) {
    const r = await client[fn](cursor ? { cursor } : undefined);
    out.push(...r[what]);
    cursor = r.nextCursor;
    if (!cursor) return out;
  }
  assert.fail(`${what}/list: more than 100 pages`);
}

// ---------------------------------------------------------------------------
// Audit

/** Every audit entry, from `agentmesh audit --output jsonl --limit 0` (one JSON object per line). */
export async function auditJsonl(ws) {
  const r = await cli(ws, ['audit', '--output', 'jsonl', '--limit', '0']);
  assert.equal(r.code, 0, `agentmesh audit --output jsonl exited ${r.code}: ${r.stderr}`);
  const lines = r.stdout.split('\n').filter(Boolean);
  return {
    raw: r.stdout,
    entries: lines.map((l, i) => {
      try {
        return JSON.parse(l);
      } catch (e) {
        return assert.fail(`audit --output jsonl line ${i + 1} is not JSON (${e.message}): ${l.slice(0, 300)}`);
      }
    }),
  };
}

/**
 * Assert each call ({tool, params, expect, upstream, text?, rule?}) appears
 * in the audit exactly once per time it was made, with its result (lib.mjs
 * assertAudited), and with the upstream that served it; a blocked call also
 * names the rule that blocked it.
 */
export function assertProxyAudited(entries, calls) {
  L.assertAudited(entries, calls);
  for (const c of calls) {
    for (const e of L.findCalls(entries, c.tool, c.params)) {
      assert.equal(e.upstream, c.upstream, `${c.tool} seq ${e.seq}: upstream ${JSON.stringify(e.upstream)}, want ${JSON.stringify(c.upstream)}`);
      if (c.rule) assert.ok(e.rules?.includes(c.rule), `${c.tool} seq ${e.seq}: rules ${JSON.stringify(e.rules)} include ${c.rule}`);
    }
  }
}

// ---------------------------------------------------------------------------
// Timing

/** Reject if `p` has not settled within `ms`. */
export function withTimeout(p, ms, what) {
  let t;
  return Promise.race([
    p,
    new Promise((_, fail) => {
      t = setTimeout(() => fail(new Error(`timed out after ${ms} ms: ${what}`)), ms);
    }),
  ]).finally(() => clearTimeout(t));
}

/**
 * Poll `fn` (sync or async) every 100 ms until it returns a truthy value;
 * resolves to it. After `timeoutMs`, resolves to the last falsy value so the
 * caller's assertion shows what was seen.
 */
export async function poll(fn, timeoutMs = 5000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v || Date.now() >= deadline) return v;
    await new Promise((r) => setTimeout(r, 100));
  }
}
