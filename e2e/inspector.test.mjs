// The MCP Inspector CLI (@modelcontextprotocol/inspector 0.15.x, run from
// node_modules, never fetched) against `agentmesh serve`. The server entry
// comes from `agentmesh install claude --file`, the same mcpServers JSON
// Claude Desktop reads, which the Inspector loads with --config/--server.
// One call also goes over streamable HTTP (--transport http).
import assert from 'node:assert/strict';
import { readFileSync, realpathSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';

import * as L from './lib.mjs';

describe('MCP Inspector CLI', { timeout: L.SUITE_TIMEOUT_MS }, () => {
  let ws;
  let claudeConfig;
  const made = [];

  /** Run the Inspector CLI against the agentmesh entry of the Claude config. */
  function inspector(...args) {
    return L.runProcess('node', [L.INSPECTOR_CLI, '--cli', '--config', claudeConfig, '--server', 'agentmesh', ...args], {
      env: ws.env,
      timeoutMs: 60_000,
    });
  }

  /** tools/call through the Inspector; parses its JSON output and records the call. */
  async function inspectorCall(c, run = inspector) {
    const args = Object.entries(c.params).map(([k, v]) => `${k}=${v}`);
    const r = await run('--method', 'tools/call', '--tool-name', c.tool, '--tool-arg', ...args);
    assert.equal(r.code, 0, `inspector tools/call ${c.tool} exited ${r.code}: ${r.stderr}`);
    let res;
    try {
      res = JSON.parse(r.stdout);
    } catch (e) {
      assert.fail(`inspector printed non-JSON (${e.message}):\n${r.stdout}\n${r.stderr}`);
    }
    const text = L.resultText(res);
    made.push({ ...c, text });
    assert.equal(L.classify(res), c.expect, `${c.tool} ${JSON.stringify(c.params)}: ${text.slice(0, 300)}`);
    return { res, text };
  }

  before(async () => {
    ws = L.makeWorkspace();
    claudeConfig = join(ws.dir, 'claude_desktop_config.json');
    const r = await L.runCli(ws, ['install', 'claude', '--file', claudeConfig]);
    assert.equal(r.code, 0, `install claude failed: ${r.stderr}`);
  });

  after(async () => {
    await L.killAll();
    ws?.cleanup();
  });

  test('install claude wrote an mcpServers entry the Inspector can use', () => {
    const cfg = JSON.parse(readFileSync(claudeConfig, 'utf8'));
    const entry = cfg.mcpServers?.agentmesh;
    assert.ok(entry, 'mcpServers.agentmesh exists');
    assert.equal(realpathSync(entry.command), realpathSync(L.BIN), 'the entry runs the agentmesh under test');
    assert.ok(entry.args.includes('serve') && entry.args.includes(ws.config), JSON.stringify(entry.args));
  });

  test('tools/list prints the five read-only built-in tools as JSON', async () => {
    const r = await inspector('--method', 'tools/list');
    assert.equal(r.code, 0, r.stderr);
    const out = JSON.parse(r.stdout);
    L.assertBuiltinTools(out.tools);
  });

  test('tools/call: allowed, blocked and redacted, from separate processes at once', async () => {
    const [allowed, blocked, redacted, dropped] = await Promise.all([
      inspectorCall(L.CASES.readAllowed),
      inspectorCall(L.CASES.readEtcHosts),
      inspectorCall(L.CASES.readSecret),
      inspectorCall(L.CASES.drop),
    ]);
    assert.match(allowed.text, /^month,region/);
    assert.equal(blocked.res.isError, true);
    assert.doesNotMatch(blocked.text, /localhost/);
    L.assertNoSecrets(JSON.stringify(redacted.res), L.sampleSecrets(ws).all, 'credentials.txt via the Inspector');
    assert.match(dropped.text, /DROP/);
  });

  test('tools/call with a numeric argument converted from the schema', async () => {
    // --tool-arg values are strings; the Inspector converts them by the
    // tool's input schema (max_bytes is a number).
    const { text } = await inspectorCall({ tool: 'filesystem_read', params: { path: '/data/reports/q1.csv', max_bytes: 5 }, expect: 'allowed' });
    assert.ok(text.startsWith('month'), text);
    assert.ok(!text.includes('2026-01'), `max_bytes limited the output: ${text}`);
  });

  test('an unknown tool makes the Inspector fail with the JSON-RPC error', async () => {
    const r = await inspector('--method', 'tools/call', '--tool-name', 'no_such_tool', '--tool-arg', 'path=/data');
    assert.equal(r.code, 1, `inspector exit code: ${r.code}\n${r.stdout}`);
    assert.match(r.stderr, /-32602/);
  });

  test('tools/call over streamable HTTP (--transport http)', async () => {
    const serve = await L.startHttpServe(ws);
    try {
      const viaHttp = (...args) =>
        L.runProcess('node', [L.INSPECTOR_CLI, '--cli', serve.url, '--transport', 'http', ...args], { env: ws.env, timeoutMs: 60_000 });
      const list = await viaHttp('--method', 'tools/list');
      assert.equal(list.code, 0, list.stderr);
      L.assertBuiltinTools(JSON.parse(list.stdout).tools);
      await inspectorCall(L.CASES.readTraversal, viaHttp);
      await inspectorCall(L.CASES.readPII, viaHttp);
    } finally {
      await L.killChild(serve.child);
    }
  });

  test('audit: every Inspector call with its result; audit verify passes', async () => {
    await L.assertNoProcessesLeft(ws);
    await L.checkAudit(ws, {
      calls: made,
      unknownTools: ['no_such_tool'],
      clientName: 'inspector-cli',
      secrets: L.sampleSecrets(ws).all,
    });
    await L.assertVerified(ws);
  });
});
