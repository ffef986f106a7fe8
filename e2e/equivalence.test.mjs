// The same sequence of JSON-RPC requests, sent as raw lines over stdio to
// fixture-server.mjs directly and through `agentmesh serve --no-builtin-tools
// --prefix "" -- node fixture-server.mjs`, must get the same JSON back: tool,
// prompt, resource and template objects member for member and in the same
// order (schemas byte for byte, no added "annotations": {}, no dropped
// "required": false), the same results, the same relayed elicitation with
// its requestedSchema.properties in the upstream's order (the order of the
// user's form), the client's elicitation answer reaching the upstream in the
// client's member order, the same log messages at the client's level and the
// same resource update for a subscriber. DOCUMENTED lists what agentmesh
// changes on purpose.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import * as L from './lib.mjs';
import * as P from './proxylib.mjs';

const FIXTURE = P.FIXTURE;

/** What agentmesh answers differently, on purpose (docs/proxy.md). */
const DOCUMENTED = {
  'initialize.serverInfo': 'agentmesh names itself',
  'initialize.instructions': 'agentmesh explains that calls are governed',
  'initialize.capabilities.*.listChanged': 'agentmesh tells clients when a catalog or an approval changes what they see',
};

/**
 * A raw JSON-RPC peer over a child's stdio: request() resolves to the
 * response's raw line; server requests are answered by onRequest(msg) with a
 * raw result string; notifications are kept raw.
 */
function rawPeer(cmd, args, env, onRequest) {
  const child = L.spawnTracked(cmd, args, { env, stdio: ['pipe', 'pipe', 'pipe'] });
  child.stderr.on('data', () => {});
  const pending = new Map();
  const notifications = [];
  const serverRequests = [];
  let buf = '';
  let next = 1;
  child.stdout.setEncoding('utf8');
  child.stdout.on('data', (d) => {
    buf += d;
    let i;
    while ((i = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, i);
      buf = buf.slice(i + 1);
      if (!line.trim()) continue;
      const msg = JSON.parse(line);
      if (msg.method && msg.id !== undefined) {
        serverRequests.push(line);
        const result = onRequest(msg);
        child.stdin.write(`{"jsonrpc":"2.0","id":${JSON.stringify(msg.id)},"result":${result}}\n`);
      } else if (msg.method) {
        notifications.push(line);
      } else if (pending.has(msg.id)) {
        pending.get(msg.id)(line);
        pending.delete(msg.id);
      }
    }
  });
  return {
    child,
    notifications,
    serverRequests,
    request(method, params) {
      const id = next++;
      child.stdin.write(JSON.stringify({ jsonrpc: '2.0', id, method, ...(params ? { params } : {}) }) + '\n');
      return P.withTimeout(new Promise((ok) => pending.set(id, ok)), 30_000, `${method} (${cmd})`);
    },
    notify(method) {
      child.stdin.write(JSON.stringify({ jsonrpc: '2.0', method }) + '\n');
    },
  };
}

/** The client's answer to an elicitation, its members deliberately unsorted. */
const ELICIT_RESULT = '{"action":"accept","content":{"verified":false,"name":"Jane","age":25,"status":"pending","score":88.5}}';
const SAMPLE_RESULT = '{"role":"assistant","content":{"type":"text","text":"sampled"},"model":"e2e","stopReason":"endTurn"}';

/** Runs the sequence; resolves to {label: raw line or parsed value}. */
async function session(peer) {
  const out = {};
  const parse = (line) => JSON.parse(line);
  out.initialize = parse(
    await peer.request('initialize', {
      protocolVersion: '2025-11-25',
      capabilities: { elicitation: {}, sampling: {} },
      clientInfo: { name: 'e2e-equivalence', version: '1.0.0' },
    }),
  ).result;
  peer.notify('notifications/initialized');
  for (const m of ['tools/list', 'prompts/list', 'resources/list', 'resources/templates/list']) {
    out[m] = parse(await peer.request(m, {})).result;
  }
  const call = async (name, args = {}) => parse(await peer.request('tools/call', { name, arguments: args })).result;
  out.simple = await call('test_simple_text');
  out.structured = await call('fixture_structured', { zeta: 2, alpha: 'ab' });
  out.elicitation = await call('test_elicitation_sep1034_defaults');
  out.sampling = await call('test_sampling', { prompt: 'Say hi' });
  out.prompt = parse(await peer.request('prompts/get', { name: 'fixture_prompt_optional', arguments: { topic: 'tests' } })).result;
  out.read = parse(await peer.request('resources/read', { uri: 'test://static-text' })).result;
  out.template = parse(await peer.request('resources/read', { uri: 'test://template/7/data' })).result;
  out.complete = parse(
    await peer.request('completion/complete', { ref: { type: 'ref/prompt', name: 'test_prompt_with_arguments' }, argument: { name: 'arg1', value: 'pa' } }),
  ).result;
  out.setLevel = parse(await peer.request('logging/setLevel', { level: 'info' })).result;
  const before = peer.notifications.length;
  out.logging = await call('test_tool_with_logging');
  out.logs = peer.notifications.slice(before).map(parse).filter((n) => n.method === 'notifications/message').map((n) => n.params);
  out.subscribe = parse(await peer.request('resources/subscribe', { uri: 'test://watched-resource' })).result;
  const beforeUpdate = peer.notifications.length;
  out.update = await call('fixture_update_watched');
  // The notification is sent before the tool's result, by the upstream and by agentmesh.
  out.updated = peer.notifications.slice(beforeUpdate).map(parse).filter((n) => n.method === 'notifications/resources/updated').map((n) => n.params);
  out.unsubscribe = parse(await peer.request('resources/unsubscribe', { uri: 'test://watched-resource' })).result;
  out.serverRequests = peer.serverRequests.map(parse).map((r) => ({ method: r.method, params: r.params }));
  return out;
}

describe('the same requests directly and through agentmesh give the same JSON', { timeout: L.SUITE_TIMEOUT_MS }, () => {
  let ws;
  let direct;
  let through;
  const answer = (msg) => (msg.method === 'elicitation/create' ? ELICIT_RESULT : SAMPLE_RESULT);

  before(async () => {
    ws = P.proxyWorkspace({ name: 'e2e-equivalence' });
    const d = rawPeer(P.NODE, [FIXTURE], process.env, answer);
    const t = rawPeer(L.BIN, ws.serveArgs('--quiet', '--no-builtin-tools', '--prefix', '', '--', P.NODE, FIXTURE), ws.env, answer);
    [direct, through] = await Promise.all([session(d), session(t)]);
    await Promise.all([L.killChild(d.child), L.killChild(t.child)]);
  });
  after(async () => {
    await L.killAll();
    ws?.cleanup();
  });

  test('capabilities: the upstream\'s, plus only what agentmesh documents', () => {
    const strip = (caps) => Object.fromEntries(Object.entries(caps).map(([k, v]) => [k, Object.fromEntries(Object.entries(v).filter(([m]) => m !== 'listChanged'))]));
    assert.deepEqual(strip(through.initialize.capabilities), strip(direct.initialize.capabilities), DOCUMENTED['initialize.capabilities.*.listChanged']);
    assert.equal(through.initialize.capabilities.elicitation, undefined, 'no server-side elicitation capability');
    assert.equal(through.initialize.protocolVersion, direct.initialize.protocolVersion);
    assert.notDeepEqual(through.initialize.serverInfo, direct.initialize.serverInfo, DOCUMENTED['initialize.serverInfo']);
  });

  test('tools, prompts, resources and templates are listed as the upstream wrote them', () => {
    for (const [m, key] of [['tools/list', 'tools'], ['prompts/list', 'prompts'], ['resources/list', 'resources'], ['resources/templates/list', 'resourceTemplates']]) {
      const byName = (list) => Object.fromEntries(list.map((o) => [o.name ?? o.uri ?? o.uriTemplate, JSON.stringify(o)]));
      assert.deepEqual(byName(through[m][key]), byName(direct[m][key]), `${m}: same objects, same member order`);
    }
    const tool = (r, n) => r['tools/list'].tools.find((t) => t.name === n);
    assert.equal(JSON.stringify(tool(through, 'json_schema_2020_12_tool').inputSchema), JSON.stringify(tool(direct, 'json_schema_2020_12_tool').inputSchema));
    assert.equal(JSON.stringify(tool(through, 'fixture_structured').outputSchema), JSON.stringify(tool(direct, 'fixture_structured').outputSchema));
    assert.ok(!('annotations' in tool(through, 'test_simple_text')), 'no empty annotations added');
    const optional = through['prompts/list'].prompts.find((p) => p.name === 'fixture_prompt_optional');
    assert.deepEqual(optional.arguments[1], { name: 'tone', description: 'How', required: false }, '"required": false kept');
  });

  test('results of calls, reads, prompts and completions are the same', () => {
    for (const k of ['simple', 'structured', 'sampling', 'prompt', 'read', 'template', 'complete', 'setLevel', 'logging', 'subscribe', 'update', 'unsubscribe']) {
      assert.deepEqual(through[k], direct[k], k);
    }
    assert.deepEqual(through.complete.completion.values, ['paris', 'park', 'party']);
  });

  test('relayed elicitation and sampling: the same params in the same order, the answer as the client wrote it', () => {
    assert.deepEqual(through.serverRequests.map((r) => r.method), ['elicitation/create', 'sampling/createMessage']);
    assert.equal(JSON.stringify(through.serverRequests), JSON.stringify(direct.serverRequests), 'params member for member, in order');
    const props = Object.keys(through.serverRequests[0].params.requestedSchema.properties);
    assert.deepEqual(props, ['name', 'age', 'score', 'status', 'verified'], 'the form keeps its field order');
    // The upstream echoes the content it received: in the client's order.
    assert.deepEqual(through.elicitation, direct.elicitation);
    assert.match(through.elicitation.content[0].text, /content=\{"verified":false,"name":"Jane","age":25,"status":"pending","score":88.5\}/);
  });

  test('log messages at the client\'s level, and resource updates for subscribers', () => {
    assert.deepEqual(through.logs, direct.logs);
    assert.deepEqual(through.logs.map((l) => l.data), ['Tool execution started', 'Tool processing data', 'Tool execution completed'], 'debug is below info');
    assert.deepEqual(through.updated, direct.updated);
    assert.deepEqual(through.updated, [{ uri: 'test://watched-resource' }]);
  });
});
