// Raw JSON lines against `agentmesh serve` over stdio, no SDK in between:
// stdout carries only JSON-RPC (every line parses as a JSON-RPC 2.0
// message), in both protocol generations, and malformed input (garbage, a
// wrong params type, an unknown method, an unknown notification, a 20 MB
// line) gets JSON-RPC errors (or nothing, for a notification) without
// stopping the server: a later tools/list still answers.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import * as L from './lib.mjs';

/** A serve process spoken to in raw JSON lines. */
class RawServe {
  constructor(ws) {
    this.child = L.spawnTracked(L.BIN, ws.serveArgs(), { env: ws.env });
    this.lines = [];
    this.stderr = '';
    this.waiters = [];
    let buf = '';
    this.child.stdout.on('data', (d) => {
      buf += d.toString('utf8');
      let i;
      while ((i = buf.indexOf('\n')) >= 0) {
        this.lines.push(buf.slice(0, i));
        buf = buf.slice(i + 1);
      }
      this.wake();
    });
    this.child.stdout.on('end', () => {
      if (buf.length) this.lines.push(buf); // an unterminated last line
      buf = '';
      this.wake();
    });
    this.child.stderr.on('data', (d) => (this.stderr += d));
    this.exited = new Promise((ok) => this.child.once('exit', (code, signal) => ok({ code, signal })));
  }

  wake() {
    for (const w of [...this.waiters]) w();
  }

  writeLine(s) {
    return new Promise((ok, fail) => this.child.stdin.write(`${s}\n`, (e) => (e ? fail(e) : ok())));
  }

  send(obj) {
    return this.writeLine(JSON.stringify(obj));
  }

  /** Every stdout line, parsed; fails on any line that is not a JSON-RPC 2.0 message. */
  messages() {
    return this.lines.map((l, i) => {
      let m;
      try {
        m = JSON.parse(l);
      } catch (e) {
        assert.fail(`stdout line ${i + 1} is not JSON (${e.message}): ${JSON.stringify(l.slice(0, 200))}`);
      }
      assertJsonRpc(m, i + 1);
      return m;
    });
  }

  /** Wait until pred(messages) is true. */
  until(pred, what, timeoutMs = 30_000) {
    return new Promise((ok, fail) => {
      const check = () => {
        let r;
        try {
          r = pred(this.messages());
        } catch (e) {
          done();
          fail(e);
          return;
        }
        if (r) {
          done();
          ok(r);
        }
      };
      const t = setTimeout(() => {
        done();
        fail(new Error(`timed out waiting for ${what}; stdout so far:\n${this.lines.map((l) => l.slice(0, 300)).join('\n')}\nstderr:\n${this.stderr}`));
      }, timeoutMs);
      const done = () => {
        clearTimeout(t);
        this.waiters = this.waiters.filter((w) => w !== check);
      };
      this.waiters.push(check);
      check();
    });
  }

  response(id, timeoutMs) {
    return this.until((ms) => ms.find((m) => m.id === id && ('result' in m || 'error' in m)), `the response to id ${id}`, timeoutMs);
  }
}

function assertJsonRpc(m, lineNo) {
  assert.equal(typeof m, 'object', `line ${lineNo}: a JSON object`);
  assert.ok(m !== null && !Array.isArray(m), `line ${lineNo}: a JSON object`);
  assert.equal(m.jsonrpc, '2.0', `line ${lineNo}: jsonrpc 2.0`);
  const isResponse = 'id' in m && ('result' in m) !== ('error' in m);
  const isRequestOrNotification = typeof m.method === 'string';
  assert.ok(isResponse || isRequestOrNotification, `line ${lineNo}: a response, request or notification: ${JSON.stringify(m).slice(0, 200)}`);
  if ('error' in m) {
    assert.equal(typeof m.error.code, 'number', `line ${lineNo}: error.code is a number`);
    assert.equal(typeof m.error.message, 'string', `line ${lineNo}: error.message is a string`);
  }
}

const INIT = {
  jsonrpc: '2.0',
  id: 1,
  method: 'initialize',
  params: { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 'e2e-raw', version: '1' } },
};
const INITIALIZED = { jsonrpc: '2.0', method: 'notifications/initialized' };

describe('serve over stdio: raw JSON lines', { timeout: L.SUITE_TIMEOUT_MS }, () => {
  let ws;

  before(() => {
    ws = L.makeWorkspace();
  });

  after(async () => {
    await L.killAll();
    ws?.cleanup();
  });

  test('initialize, initialized, tools/list, tools/call: every stdout line is JSON-RPC', async () => {
    const s = new RawServe(ws);
    await s.send(INIT);
    await s.send(INITIALIZED);
    await s.send({ jsonrpc: '2.0', id: 2, method: 'tools/list' });
    await s.send({ jsonrpc: '2.0', id: 3, method: 'tools/call', params: { name: 'filesystem_read', arguments: { path: '/etc/hosts' } } });
    await s.send({ jsonrpc: '2.0', id: 4, method: 'tools/call', params: { name: 'code_execute', arguments: { code: 'print(6*7)' } } });

    const init = await s.response(1);
    assert.equal(init.result.protocolVersion, '2025-11-25');
    assert.equal(init.result.serverInfo.name, 'agentmesh');
    const list = await s.response(2);
    L.assertBuiltinTools(list.result.tools);
    const blocked = await s.response(3);
    assert.equal(blocked.result.isError, true);
    const code = await s.response(4);
    assert.equal(L.resultText(code.result).trim(), '42');

    // Closing stdin stops the server cleanly.
    s.child.stdin.end();
    const { code: exitCode } = await s.exited;
    assert.equal(exitCode, 0, `serve exit code; stderr:\n${s.stderr}`);
    const msgs = s.messages(); // throws on any non-JSON-RPC line
    assert.deepEqual(msgs.map((m) => m.id).sort(), [1, 2, 3, 4], 'one response per request, nothing else');
    assert.match(s.stderr, /✗ blocked\s+filesystem_read/, 'the console view went to stderr');
  });

  test('2026-07-28 without initialize: server/discover, tools/list, tools/call', async () => {
    const meta = {
      'io.modelcontextprotocol/protocolVersion': '2026-07-28',
      'io.modelcontextprotocol/clientInfo': { name: 'e2e-raw-modern', version: '1' },
      'io.modelcontextprotocol/clientCapabilities': {},
    };
    const s = new RawServe(ws);
    await s.send({ jsonrpc: '2.0', id: 'd', method: 'server/discover', params: { _meta: meta } });
    await s.send({ jsonrpc: '2.0', id: 'l', method: 'tools/list', params: { _meta: meta } });
    await s.send({ jsonrpc: '2.0', id: 'c', method: 'tools/call', params: { name: 'database_query', arguments: { query: 'DROP TABLE users' }, _meta: meta } });
    const d = await s.response('d');
    assert.ok(d.result.supportedVersions.includes('2026-07-28'), JSON.stringify(d.result.supportedVersions));
    const l = await s.response('l');
    L.assertBuiltinTools(l.result.tools);
    const c = await s.response('c');
    assert.equal(c.result.isError, true);
    assert.equal(c.result.resultType, 'complete');
    s.child.stdin.end();
    assert.equal((await s.exited).code, 0);
    s.messages();
  });

  test('malformed input gets JSON-RPC errors and the server keeps answering', async () => {
    const s = new RawServe(ws);
    await s.send(INIT);
    await s.send(INITIALIZED);
    await s.response(1);

    await s.writeLine('this is not json');
    await s.writeLine('{"jsonrpc":"2.0","id":10,"method":"tools/call","params":"x"}');
    await s.send({ jsonrpc: '2.0', id: 11, method: 'no/such/method' });
    // Well-formed JSON-RPC, but an argument of the wrong type: a tool-level
    // error result (audited as error), not a protocol error.
    await s.send({ jsonrpc: '2.0', id: 16, method: 'tools/call', params: { name: 'filesystem_read', arguments: { path: 42 } } });
    await s.send({ jsonrpc: '2.0', method: 'notifications/no-such-notification' });
    await s.writeLine('{"jsonrpc":"2.0","id":12,"method":"tools/call","params":{"name":"filesystem_read","arguments":{"path":');
    // A 20 MB line: a tools/call whose path is 20 MB long.
    const huge = `{"jsonrpc":"2.0","id":13,"method":"tools/call","params":{"name":"filesystem_read","arguments":{"path":"/data/${'a'.repeat(20 << 20)}"}}}`;
    await s.writeLine(huge);
    await s.send({ jsonrpc: '2.0', id: 14, method: 'tools/list' });

    const list = await s.response(14, 60_000);
    L.assertBuiltinTools(list.result.tools);

    const err10 = await s.response(10);
    assert.ok(err10.error, `params "x": a JSON-RPC error, got ${JSON.stringify(err10)}`);
    assert.ok([-32600, -32602].includes(err10.error.code), `params "x": invalid request/params, got ${err10.error.code}`);
    const err11 = await s.response(11);
    assert.equal(err11.error?.code, -32601, 'unknown method: method not found');
    const bad = await s.response(16);
    assert.equal(bad.result?.isError, true, `path: 42 is refused as a tool result: ${JSON.stringify(bad)}`);

    // Garbage, the truncated line and the 20 MB line cannot be attributed to
    // an id: three parse errors with id null (the 20 MB one may name id 13).
    const msgs = await s.until(
      (ms) => (ms.filter((m) => m.error?.code === -32700).length >= 3 ? ms : null),
      'three parse errors',
    );
    const parseErrors = msgs.filter((m) => m.error?.code === -32700);
    for (const m of parseErrors) assert.ok(m.id === null || m.id === 13, `parse error id: ${m.id}`);

    // A final request still answers, and nothing else came out: no
    // response to the notification, no stray output.
    await s.send({ jsonrpc: '2.0', id: 15, method: 'ping' });
    assert.deepEqual((await s.response(15)).result, {});
    s.child.stdin.end();
    assert.equal((await s.exited).code, 0, `serve exit; stderr:\n${s.stderr}`);
    const all = s.messages();
    const ids = all.map((m) => m.id);
    assert.equal(all.length, 9, `9 responses (init, 10, 11, 16, 3 parse errors, 14, 15), got:\n${all.map((m) => JSON.stringify(m).slice(0, 200)).join('\n')}`);
    for (const id of [1, 10, 11, 14, 15, 16]) assert.equal(ids.filter((x) => x === id).length, 1, `exactly one response to id ${id}`);
    assert.ok(all.every((m) => !('method' in m)), 'the server sent no request or notification');
  });

  test('audit: the raw calls with their results; no serve process is left', async () => {
    await L.assertNoProcessesLeft(ws);
    const entries = await L.readAudit(ws);
    L.assertSequence(entries);
    L.assertAudited(entries, [
      { tool: 'filesystem_read', params: { path: '/etc/hosts' }, expect: 'blocked' },
      { tool: 'code_execute', params: { code: 'print(6*7)' }, expect: 'allowed' },
      { tool: 'database_query', params: { query: 'DROP TABLE users' }, expect: 'blocked' },
      { tool: 'filesystem_read', params: { path: 42 }, expect: 'error' },
    ]);
    assert.equal(L.findCalls(entries, 'database_query')[0].client, 'e2e-raw-modern', 'the 2026-07-28 clientInfo from _meta is recorded');
    // The tools/call whose params are not an object never reached a tool,
    // but the attempt is recorded; other malformed and oversized messages
    // are not tool calls at all.
    const malformed = L.invocations(entries).filter((e) => (e.reason ?? '').startsWith('malformed tools/call request: '));
    assert.equal(malformed.length, 1, 'the tools/call with params "x" is audited once');
    assert.equal(malformed[0].result, 'error');
    assert.equal(L.invocations(entries).length, 5, 'nothing else was audited as a tool invocation');
    await L.assertVerified(ws);
  });
});
