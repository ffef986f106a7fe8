// Whole-process proxy benchmark: the `echo` tool of server-everything called
// by the official TypeScript SDK client
//
//   stdio  directly (client ↔ server-everything) and through `agentmesh serve`
//          with durable audit (synchronous: full) and relaxed audit
//          (synchronous: normal), each fronting its own server-everything
//   http   through supergateway 4.0.0 (stdio → streamable HTTP, stateful, no
//          governance) and through `agentmesh serve --http` (full and normal),
//          each fronting server-everything over stdio
//   tput   the HTTP targets with S concurrent sessions for D seconds each
//
// All sessions of a phase are open at once in this one process; the measured
// calls are interleaved in rounds (R rounds × C sequential calls per target,
// the target order rotating every round) so that drift of the machine hits
// every target alike. Every result is checked ("Echo: hello <i>"); a wrong
// one fails the run. Afterwards every agentmesh state directory is checked
// with `agentmesh audit verify`, and its tool_invocation entries with result
// "allowed" are counted against the calls this process made.
//
// Usage: node bench.mjs --agentmesh BIN [--work DIR] [--warmup 200]
//   [--rounds 20] [--calls 100] [--sessions 8] [--seconds 10]
//   [--phases stdio,http,tput] [--markdown FILE]
// Progress goes to stderr, the markdown report to stdout (and FILE).
// Exit status 1 if any check failed (wrong result, client error, audit count
// mismatch, audit verify failure, unexpected output of agentmesh).
import { spawn, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, writeFileSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import { dirname, join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';

import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';

const require = createRequire(import.meta.url);
const HERE = dirname(new URL(import.meta.url).pathname);
const NODE = process.execPath;
const EVERYTHING = join(HERE, 'node_modules/@modelcontextprotocol/server-everything/dist/index.js');
const SUPERGATEWAY = join(HERE, 'node_modules/supergateway/dist/index.js');
const version = (p) => JSON.parse(readFileSync(join(HERE, 'node_modules', p, 'package.json'), 'utf8')).version;

const { values: o } = parseArgs({
  options: {
    agentmesh: { type: 'string', default: process.env.AGENTMESH_BIN ?? '/tmp/bench-agentmesh' },
    work: { type: 'string' },
    warmup: { type: 'string', default: '200' },
    rounds: { type: 'string', default: '20' },
    calls: { type: 'string', default: '100' },
    sessions: { type: 'string', default: '8' },
    seconds: { type: 'string', default: '10' },
    phases: { type: 'string', default: 'stdio,http,tput' },
    markdown: { type: 'string' },
  },
});
const WARMUP = +o.warmup, ROUNDS = +o.rounds, CALLS = +o.calls;
const SESSIONS = +o.sessions, SECONDS = +o.seconds;
const PHASES = new Set(o.phases.split(','));
const BIN = o.agentmesh;
const WORK = o.work ?? mkdtempSync(join(os.tmpdir(), 'agentmesh-proxy-bench.'));
mkdirSync(WORK, { recursive: true });

const log = (...a) => console.error(`[${new Date().toISOString().slice(11, 23)}]`, ...a);
const problems = []; // every failed check, printed at the end
const problem = (msg) => {
  problems.push(msg);
  log('PROBLEM:', msg);
};
const children = new Set(); // server processes to kill if we die
process.on('exit', () => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
});

// ---------------------------------------------------------------------------
// Statistics

function stats(samples) {
  const s = Float64Array.from(samples).sort();
  const q = (p) => s[Math.min(s.length - 1, Math.ceil(p * s.length) - 1)]; // nearest rank
  const mean = s.reduce((a, b) => a + b, 0) / s.length;
  return { n: s.length, p50: q(0.5), p90: q(0.9), p99: q(0.99), mean, max: s[s.length - 1] };
}
const ms = (x) => (x === undefined ? '–' : x.toFixed(3));
const loadavg = () => os.loadavg().map((x) => x.toFixed(2)).join(' ');

// ---------------------------------------------------------------------------
// agentmesh workspaces: a config, a state dir, HOME and XDG_CONFIG_HOME

function workspace(name, synchronous, batchWindow = '0s') {
  const dir = join(WORK, name);
  const home = join(dir, 'home');
  mkdirSync(join(home, '.config'), { recursive: true });
  const config = join(dir, 'agentmesh.yaml');
  writeFileSync(
    config,
    `# written by scripts/bench/proxy/bench.mjs
agent: {name: bench, sponsor: bench@example.com}
policies: {paths: []}          # the embedded default policy
audit: {synchronous: ${synchronous}, batch_window: ${batchWindow}}
# server-everything, its tools under their own names; echo changes
# nothing, so its calls are logged once, after they run (any other tool's
# intent would be logged durably first: write-ahead)
upstreams:
  - name: everything
    command: ${JSON.stringify(NODE)}
    args: [${JSON.stringify(EVERYTHING)}, stdio]
    prefix: ""
    read_only_tools: [echo]
`,
  );
  const env = { ...process.env, HOME: home, XDG_CONFIG_HOME: join(home, '.config') };
  delete env.AGENTMESH_CONFIG;
  delete env.AGENTMESH_STATE_DIR;
  delete env.AGENTMESH_DATABASE_URL;
  const mode = batchWindow === '0s' ? `synchronous: ${synchronous}` : `batch_window: ${batchWindow}`;
  return { name, dir, config, state: join(dir, 'state'), env, synchronous, mode };
}
const amArgs = (ws, ...rest) => ['--config', ws.config, '--state-dir', ws.state, ...rest];

// Collects a child's stderr lines; `expected` lines are not reported.
function stderrCollector(label, stream, expected = []) {
  const lines = [];
  let buf = '';
  stream.setEncoding('utf8');
  stream.on('data', (d) => {
    buf += d;
    let i;
    while ((i = buf.indexOf('\n')) >= 0) {
      lines.push(buf.slice(0, i));
      buf = buf.slice(i + 1);
    }
  });
  return {
    lines,
    unexpected: () => lines.filter((l) => l.trim() && !expected.some((re) => re.test(l))),
    label,
  };
}
const UPSTREAM_BANNER = /Starting default \(STDIO\) server/; // server-everything's own stderr

// ---------------------------------------------------------------------------
// Targets: {label, client, tool, n (calls made), ws?, ...}

async function connect(target, transport) {
  const client = new Client({ name: `bench-${target.key}`, version: '1.0.0' });
  client.onerror = (e) => {
    const msg = `${target.label}: client error: ${e?.message ?? e}`;
    // The SDK reports aborting its own GET stream on close as an error.
    if (target.closing && /AbortError/.test(msg)) target.closeNoise = (target.closeNoise ?? 0) + 1;
    else problem(msg);
  };
  await client.connect(transport);
  const { tools } = await client.listTools();
  if (!tools.some((t) => t.name === target.tool)) throw new Error(`${target.label}: no tool ${target.tool} in tools/list`);
  return client;
}

async function stdioTarget(key, label, command, args, ws) {
  const t = { key, label, tool: 'echo', n: 0, ws, samples: [] };
  const transport = new StdioClientTransport({ command, args, env: ws?.env ?? { ...process.env }, stderr: 'pipe' });
  t.err = stderrCollector(label, transport.stderr, [UPSTREAM_BANNER]);
  t.client = await connect(t, transport);
  t.transport = transport;
  t.proc = transport._process; // to see how it exits
  return t;
}

// Starts a server process that prints its URL on stderr; resolves {proc, url, err}.
function startHttpServer(label, command, args, env, urlRe, expected) {
  const proc = spawn(command, args, { env, stdio: ['pipe', 'pipe', 'pipe'] });
  children.add(proc);
  const err = stderrCollector(label, proc.stderr, expected);
  const stdout = [];
  proc.stdout.on('data', (d) => stdout.push(d));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${label} did not start:\n${err.lines.join('\n')}`)), 20000);
    const poll = setInterval(() => {
      for (const l of err.lines) {
        const m = urlRe.exec(l);
        if (m) {
          clearInterval(poll);
          clearTimeout(timer);
          resolve({ proc, url: m[1], err, stdout });
          return;
        }
      }
      if (proc.exitCode !== null) {
        clearInterval(poll);
        clearTimeout(timer);
        reject(new Error(`${label} exited ${proc.exitCode}:\n${err.lines.join('\n')}`));
      }
    }, 20);
  });
}

async function httpSession(t) {
  const client = await connect(t, new StreamableHTTPClientTransport(new URL(t.url)));
  t.clients.push(client);
  return client;
}

// supergateway binds every interface (express app.listen(port)); this preload
// makes it bind 127.0.0.1 only and report the real port of --port 0.
const LOOPBACK_PRELOAD = `// written by bench.mjs: listen on loopback only, report the address
const net = require('node:net');
const listen = net.Server.prototype.listen;
net.Server.prototype.listen = function (...args) {
  if (typeof args[0] === 'number' && (args.length === 1 || typeof args[1] === 'function')) args.splice(1, 0, '127.0.0.1');
  this.once('listening', () => {
    const a = this.address();
    process.stderr.write('bench-preload: listening on http://' + a.address + ':' + a.port + '/mcp\\n');
  });
  return listen.apply(this, args);
};
`;

async function supergatewayTarget() {
  const preload = join(WORK, 'loopback-preload.cjs');
  writeFileSync(preload, LOOPBACK_PRELOAD);
  const q = (s) => `'${s.replaceAll("'", `'\\''`)}'`;
  const args = [
    '--require', preload, SUPERGATEWAY,
    '--stdio', `${q(NODE)} ${q(EVERYTHING)} stdio`,
    '--outputTransport', 'streamableHttp', '--stateful',
    '--port', '0', '--logLevel', 'none',
  ];
  const t = { key: 'sg', label: `supergateway ${version('supergateway')} (stateful)`, tool: 'echo', n: 0, samples: [], clients: [] };
  Object.assign(t, await startHttpServer(t.label, NODE, args, { ...process.env }, /listening on (http:\/\/127\.0\.0\.1:\d+\/mcp)/, [/bench-preload/, UPSTREAM_BANNER, /^Child stderr/]));
  t.cmd = `node ${SUPERGATEWAY} ${args.slice(3).join(' ')}`;
  t.client = await httpSession(t);
  return t;
}

async function agentmeshHttpTarget(ws) {
  const t = { key: `am-${ws.name}`, label: `agentmesh --http (${ws.mode})`, tool: 'echo', n: 0, ws, samples: [], clients: [] };
  const args = amArgs(ws, 'serve', '--http', '127.0.0.1:0', '--quiet');
  Object.assign(t, await startHttpServer(t.label, BIN, args, ws.env, /listening on (http:\/\/\S+\/mcp)/, [/listening on http/, UPSTREAM_BANNER]));
  t.client = await httpSession(t);
  return t;
}

// ---------------------------------------------------------------------------
// Calls

async function echo(t, client, message) {
  const t0 = performance.now();
  const r = await client.callTool({ name: t.tool, arguments: { message } });
  const dt = performance.now() - t0;
  t.n++;
  const want = `Echo: ${message}`;
  if (r.isError || !Array.isArray(r.content) || r.content.length !== 1 || r.content[0].text !== want) {
    throw new Error(`${t.label}: ${t.tool}(${JSON.stringify(message)}) returned ${JSON.stringify(r).slice(0, 500)}, want text ${JSON.stringify(want)}`);
  }
  return dt;
}

// Warm-up, then ROUNDS rounds of CALLS sequential calls per target, the
// order rotating each round. Message i of a target is "hello <i>".
async function interleaved(targets) {
  for (const t of targets) {
    for (let i = 0; i < WARMUP; i++) await echo(t, t.client, `hello ${t.n}`);
  }
  for (let r = 0; r < ROUNDS; r++) {
    for (let k = 0; k < targets.length; k++) {
      const t = targets[(r + k) % targets.length];
      for (let i = 0; i < CALLS; i++) t.samples.push(await echo(t, t.client, `hello ${t.n}`));
    }
  }
}

// SESSIONS sessions of one target calling in a loop for SECONDS.
async function throughput(t) {
  const sessions = [];
  for (let s = 0; s < SESSIONS; s++) sessions.push(s === 0 ? t.client : await httpSession(t));
  for (const [s, c] of sessions.entries()) for (let i = 0; i < 20; i++) await echo(t, c, `hello w${s}.${i}`);
  const lat = [];
  const t0 = performance.now();
  const deadline = t0 + SECONDS * 1000;
  await Promise.all(
    sessions.map(async (c, s) => {
      for (let i = 0; performance.now() < deadline; i++) lat.push(await echo(t, c, `hello ${s}.${i}`));
    }),
  );
  const elapsed = (performance.now() - t0) / 1000;
  return { calls: lat.length, elapsed, rate: lat.length / elapsed, ...stats(lat) };
}

// ---------------------------------------------------------------------------
// Shutdown and the audit check

function waitExit(proc, ms) {
  if (proc.exitCode !== null || proc.signalCode !== null) return Promise.resolve(true);
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(false), ms);
    proc.once('exit', () => {
      clearTimeout(timer);
      resolve(true);
    });
  });
}

async function closeStdio(t) {
  t.closing = true;
  const t0 = performance.now();
  await t.client.close(); // SDK: stdin EOF, 2 s, SIGTERM, 2 s, SIGKILL
  await waitExit(t.proc, 5000);
  t.exit = { code: t.proc.exitCode, signal: t.proc.signalCode, ms: performance.now() - t0 };
  log(`${t.label}: exit ${t.exit.code ?? t.exit.signal} ${t.exit.ms.toFixed(0)} ms after stdin EOF`);
  if (t.ws && (t.exit.code !== 0 || t.exit.ms > 1900)) {
    problem(`${t.label}: after stdin EOF: exit code ${t.exit.code}, signal ${t.exit.signal}, after ${t.exit.ms.toFixed(0)} ms`);
  }
}

async function closeHttp(t) {
  t.closing = true;
  const c0 = performance.now();
  for (const c of t.clients) {
    try {
      await c.transport.terminateSession();
    } catch (e) {
      problem(`${t.label}: DELETE session: ${e?.message ?? e}`);
    }
    await c.close();
  }
  t.closeMs = performance.now() - c0;
  const t0 = performance.now();
  t.proc.kill('SIGTERM');
  if (!(await waitExit(t.proc, 10000))) {
    problem(`${t.label}: still running 10 s after SIGTERM; killed`);
    t.proc.kill('SIGKILL');
    await waitExit(t.proc, 5000);
  }
  t.exit = { code: t.proc.exitCode, signal: t.proc.signalCode, ms: performance.now() - t0 };
  log(`${t.label}: ${t.clients.length} sessions closed (DELETE + close) in ${t.closeMs.toFixed(0)} ms; exit ${t.exit.code ?? t.exit.signal} ${t.exit.ms.toFixed(0)} ms after SIGTERM`);
  children.delete(t.proc);
  if (t.ws && t.exit.code !== 0) problem(`${t.label}: exit code ${t.exit.code}, signal ${t.exit.signal} after SIGTERM`);
  const out = Buffer.concat(t.stdout).toString();
  if (t.ws && out) problem(`${t.label}: ${out.length} bytes on stdout in --http mode: ${JSON.stringify(out.slice(0, 300))}`);
}

function auditCheck(t) {
  const ws = t.ws;
  const verify = spawnSync(BIN, amArgs(ws, 'audit', 'verify'), { env: ws.env, encoding: 'utf8' });
  const list = spawnSync(BIN, amArgs(ws, 'audit', '--output', 'jsonl', '--limit', '0'), { env: ws.env, encoding: 'utf8', maxBuffer: 1 << 30 });
  const res = { expected: t.n, allowed: 0, other: {}, verifyCode: verify.status, verifyLine: (verify.stdout + verify.stderr).split('\n')[0].trim() };
  if (list.status !== 0) problem(`${t.label}: agentmesh audit --output jsonl exited ${list.status}: ${list.stderr.trim()}`);
  const durations = [];
  for (const line of list.stdout.split('\n')) {
    if (!line.trim()) continue;
    const e = JSON.parse(line);
    if (e.action !== 'tool_invocation') continue;
    if (e.tool === t.tool && e.result === 'allowed') {
      res.allowed++;
      if (typeof e.duration_us === 'number') durations.push(e.duration_us / 1000);
    } else {
      const k = `${e.tool} ${e.result}`;
      res.other[k] = (res.other[k] ?? 0) + 1;
    }
  }
  if (durations.length) res.duration = stats(durations);
  if (verify.status !== 0) problem(`${t.label}: agentmesh audit verify exited ${verify.status}: ${verify.stdout}${verify.stderr}`);
  if (res.allowed !== res.expected) problem(`${t.label}: ${res.allowed} allowed ${t.tool} tool_invocation entries in the audit log, ${res.expected} calls made`);
  if (Object.keys(res.other).length) problem(`${t.label}: other tool_invocation entries: ${JSON.stringify(res.other)}`);
  return res;
}

function stderrCheck(t) {
  const bad = t.err.unexpected();
  if (bad.length) problem(`${t.label}: ${bad.length} unexpected stderr lines, first: ${JSON.stringify(bad.slice(0, 5))}`);
  writeFileSync(join(WORK, `${t.key}${t.phase ? '-' + t.phase : ''}.stderr`), t.err.lines.join('\n'));
}

// ---------------------------------------------------------------------------
// Main

const md = [];
const out = (s = '') => md.push(s);
const audits = [];
const row = (cells) => `| ${cells.join(' | ')} |`;
const verdict = (added, limit) => (added <= limit ? `≤ ${limit} ms: met` : `≤ ${limit} ms: **not met**`);

log(`work directory ${WORK}; load average ${loadavg()}`);
out(`## agentmesh proxy benchmark (${new Date().toISOString()})`);
out();
out(`node ${process.version}, ${os.cpus().length} CPUs (${os.cpus()[0]?.model?.trim()}), ${os.platform()} ${os.release()}; ` +
  `SDK ${version('@modelcontextprotocol/sdk')}, server-everything ${version('@modelcontextprotocol/server-everything')}, supergateway ${version('supergateway')}; ` +
  `agentmesh ${spawnSync(BIN, ['version'], { encoding: 'utf8' }).stdout.trim().split('\n')[0]}`);
out();
out(`load average at start: ${loadavg()}`);

let failed = false;
try {
  if (PHASES.has('stdio')) {
    log('stdio: starting direct, agentmesh full, agentmesh normal, agentmesh batched');
    const full = workspace('stdio-full', 'full');
    const normal = workspace('stdio-normal', 'normal');
    const batched = workspace('stdio-batched', 'full', '5ms');
    const direct = await stdioTarget('direct', 'direct (stdio)', NODE, [EVERYTHING, 'stdio']);
    const amFull = await stdioTarget('am-full', 'agentmesh (synchronous: full)', BIN, amArgs(full, 'serve', '--quiet'), full);
    const amNormal = await stdioTarget('am-normal', 'agentmesh (synchronous: normal)', BIN, amArgs(normal, 'serve', '--quiet'), normal);
    const amBatched = await stdioTarget('am-batched', 'agentmesh (batch_window: 5ms)', BIN, amArgs(batched, 'serve', '--quiet'), batched);
    const targets = [direct, amFull, amNormal, amBatched];
    for (const t of targets) t.phase = 'stdio';
    log(`stdio: warm-up ${WARMUP}, ${ROUNDS} rounds × ${CALLS} calls per target`);
    const t0 = performance.now();
    await interleaved(targets);
    log(`stdio: done in ${((performance.now() - t0) / 1000).toFixed(1)} s; load average ${loadavg()}`);
    for (const t of targets) await closeStdio(t);
    for (const t of targets) stderrCheck(t);
    const d = stats(direct.samples);
    out();
    out(`### stdio: \`echo\` on server-everything, direct vs through agentmesh serve`);
    out();
    out(`${WARMUP} warm-up calls per target, then ${ROUNDS} interleaved rounds × ${CALLS} sequential calls per target (order rotating); latency of \`client.callTool\` in ms, one SDK client process.`);
    out();
    out(row(['target', 'calls', 'p50', 'p90', 'p99', 'mean', 'max', 'added p50', 'ratio p50', 'target (added p50)']));
    out(row(['---', '--:', '--:', '--:', '--:', '--:', '--:', '--:', '--:', '---']));
    out(row([direct.label, d.n, ms(d.p50), ms(d.p90), ms(d.p99), ms(d.mean), ms(d.max), '', '1.00×', '']));
    for (const [t, limit] of [[amFull, 0.5], [amNormal, 0.15], [amBatched, 0.15]]) {
      const s = stats(t.samples);
      const added = s.p50 - d.p50;
      out(row([t.label, s.n, ms(s.p50), ms(s.p90), ms(s.p99), ms(s.mean), ms(s.max), `+${ms(added)}`, `${(s.p50 / d.p50).toFixed(2)}×`, verdict(added, limit)]));
    }
    for (const t of [amFull, amNormal, amBatched]) audits.push([t, auditCheck(t)]);
  }

  if (PHASES.has('http') || PHASES.has('tput')) {
    log('http: starting supergateway, agentmesh --http full, normal and batched');
    const full = workspace('http-full', 'full');
    const normal = workspace('http-normal', 'normal');
    const batched = workspace('http-batched', 'full', '5ms');
    const sg = await supergatewayTarget();
    const amFull = await agentmeshHttpTarget(full);
    const amNormal = await agentmeshHttpTarget(normal);
    const amBatched = await agentmeshHttpTarget(batched);
    const targets = [sg, amFull, amNormal, amBatched];
    for (const t of targets) t.phase = 'http';
    log(`http: ${sg.url} ${amFull.url} ${amNormal.url}`);
    if (PHASES.has('http')) {
      log(`http: warm-up ${WARMUP}, ${ROUNDS} rounds × ${CALLS} calls per target`);
      const t0 = performance.now();
      await interleaved(targets);
      log(`http: done in ${((performance.now() - t0) / 1000).toFixed(1)} s; load average ${loadavg()}`);
      const g = stats(sg.samples);
      out();
      out(`### streamable HTTP: \`echo\` through supergateway vs through agentmesh serve --http (both fronting server-everything over stdio)`);
      out();
      out(`SDK StreamableHTTPClientTransport, one session per target; ${WARMUP} warm-up calls, ${ROUNDS} interleaved rounds × ${CALLS} sequential calls per target; ms.`);
      out();
      out(row(['target', 'calls', 'p50', 'p90', 'p99', 'mean', 'max', 'ours − supergateway p50', 'ratio p50 (ours / supergateway)']));
      out(row(['---', '--:', '--:', '--:', '--:', '--:', '--:', '--:', '--:']));
      out(row([sg.label, g.n, ms(g.p50), ms(g.p90), ms(g.p99), ms(g.mean), ms(g.max), '', '1.00×']));
      for (const t of [amFull, amNormal, amBatched]) {
        const s = stats(t.samples);
        const diff = s.p50 - g.p50;
        out(row([t.label, s.n, ms(s.p50), ms(s.p90), ms(s.p99), ms(s.mean), ms(s.max), `${diff >= 0 ? '+' : ''}${ms(diff)}`, `${(s.p50 / g.p50).toFixed(2)}×`]));
      }
    }
    if (PHASES.has('tput')) {
      const res = [];
      for (const t of targets) {
        log(`tput: ${t.label}: ${SESSIONS} sessions, ${SECONDS} s`);
        res.push([t, await throughput(t)]);
        log(`tput: ${t.label}: ${res.at(-1)[1].rate.toFixed(0)} calls/s; load average ${loadavg()}`);
      }
      const base = res[0][1].rate;
      out();
      out(`### streamable HTTP throughput: ${SESSIONS} concurrent sessions, each calling \`echo\` in a loop for ${SECONDS} s, one target at a time`);
      out();
      out(`supergateway (stateful) runs one server-everything child per session; agentmesh one upstream child shared by all sessions.`);
      out();
      out(row(['target', 'calls', 'calls/s', 'p50 ms', 'p90 ms', 'p99 ms', 'ratio calls/s (ours / supergateway)']));
      out(row(['---', '--:', '--:', '--:', '--:', '--:', '--:']));
      for (const [t, r] of res) out(row([t.label, r.calls, r.rate.toFixed(0), ms(r.p50), ms(r.p90), ms(r.p99), `${(r.rate / base).toFixed(2)}×`]));
    }
    for (const t of targets) await closeHttp(t);
    for (const t of targets) stderrCheck(t);
    for (const t of [amFull, amNormal, amBatched]) audits.push([t, auditCheck(t)]);
  }
} catch (e) {
  failed = true;
  problem(e?.stack ?? String(e));
}

if (audits.length) {
  out();
  out(`### audit logs: \`agentmesh audit verify\` and allowed \`tool_invocation\` entries vs calls made`);
  out();
  out(row(['agentmesh', 'calls made', 'allowed tool_invocation entries', 'other tool_invocation', 'audit verify', 'duration_us p50 / p99 in ms (agentmesh: pipeline incl. upstream round trip, before the audit append)', 'shutdown']));
  out(row(['---', '--:', '--:', '---', '---', '--:', '---']));
  for (const [t, a] of audits) {
    out(row([
      `${t.label}${t.phase === 'http' ? ' [http]' : ' [stdio]'}`, a.expected, `${a.allowed}${a.allowed === a.expected ? ' ✓' : ' ✗'}`,
      Object.keys(a.other).length ? JSON.stringify(a.other) : 'none',
      `exit ${a.verifyCode}: ${a.verifyLine.replaceAll('|', '\\|')}`,
      a.duration ? `${ms(a.duration.p50)} / ${ms(a.duration.p99)}` : '–',
      t.exit ? `exit ${t.exit.code ?? t.exit.signal} ${t.exit.ms.toFixed(0)} ms after ${t.phase === 'http' ? 'SIGTERM' : 'stdin EOF'}` : '–',
    ]));
  }
}
out();
out(`load average at end: ${loadavg()}`);
out();
out(problems.length ? `**${problems.length} problem(s):**\n\n${problems.map((p) => `- ${p.replaceAll('\n', ' ')}`).join('\n')}` : 'No problems: every result verified, audit counts match, audit logs verify.');
out();
out(`work directory: ${WORK} (configs, state dirs, stderr of every server; run.sh removes it unless KEEP=1)`);

const text = md.join('\n') + '\n';
process.stdout.write(text);
if (o.markdown) writeFileSync(o.markdown, text);
process.exit(failed || problems.length ? 1 : 0);
