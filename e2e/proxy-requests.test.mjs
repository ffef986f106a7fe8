// Requests an upstream sends back during a call (MCP 2025-11-25, "Client
// Features"): server-everything's trigger-elicitation-request and
// trigger-sampling-request, called through agentmesh by the official SDK
// client. agentmesh relays elicitation/create and sampling/createMessage to
// the client whose call is in progress, returns the answer to the upstream,
// and records an upstream_request audit entry; a client without the
// capability gets an error result, not a hang.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { CreateMessageRequestSchema, ElicitRequestSchema } from '@modelcontextprotocol/sdk/types.js';

import * as L from './lib.mjs';
import * as P from './proxylib.mjs';

describe('upstream requests relayed to the client (serve -- server-everything)', { timeout: 60_000 }, () => {
  let ws;
  const clients = [];
  const elicited = [];
  const sampled = [];

  async function connect(name, capabilities) {
    const transport = new StdioClientTransport({ command: L.BIN, args: ws.serveArgs('--upstream-name', 'ev', '--', ...P.everythingCmd()), env: ws.env, stderr: 'pipe' });
    const client = new Client({ name, version: '1.0.0' }, { capabilities });
    if (capabilities.elicitation) {
      client.setRequestHandler(ElicitRequestSchema, async (req) => {
        elicited.push(req.params);
        return { action: 'accept', content: { name: 'Ada Lovelace', check: true, email: 'ada@example.com' } };
      });
    }
    if (capabilities.sampling) {
      client.setRequestHandler(CreateMessageRequestSchema, async (req) => {
        sampled.push(req.params);
        return { model: 'e2e-model', role: 'assistant', content: { type: 'text', text: 'sampled reply 42' } };
      });
    }
    await P.withTimeout(client.connect(transport), 30_000, 'connecting');
    clients.push(client);
    return client;
  }

  before(() => {
    ws = P.proxyWorkspace({ name: 'e2e-requests' });
  });
  after(async () => {
    for (const c of clients) await c.close();
    ws.cleanup();
  });

  test('elicitation: the client is asked, its answer reaches the upstream', async () => {
    const c = await connect('can-ask', { elicitation: {}, sampling: {} });
    const tools = (await c.listTools()).tools.map((t) => t.name);
    assert.ok(tools.includes('ev__trigger-elicitation-request'), `listed: ${tools.join(', ')}`);
    const res = await c.callTool({ name: 'ev__trigger-elicitation-request', arguments: {} }, undefined, { timeout: 20_000 });
    assert.equal(res.isError, undefined, JSON.stringify(res).slice(0, 400));
    assert.equal(elicited.length, 1, 'the client was asked once');
    assert.match(elicited[0].message, /Please provide inputs/);
    assert.match(JSON.stringify(res), /Ada Lovelace/, 'the answer reached the upstream and came back in its result');
  });

  test('sampling: the client samples, the upstream gets the message', async () => {
    const c = clients[0];
    const res = await c.callTool({ name: 'ev__trigger-sampling-request', arguments: { prompt: 'say hi', maxTokens: 10 } }, undefined, { timeout: 20_000 });
    assert.equal(res.isError, undefined, JSON.stringify(res).slice(0, 400));
    assert.equal(sampled.length, 1);
    assert.match(JSON.stringify(sampled[0].messages), /say hi/);
    assert.match(JSON.stringify(res), /sampled reply 42/);
  });

  test('a client without the capability: an error result, serving goes on', async () => {
    const c = await connect('cannot-ask', {});
    const res = await c.callTool({ name: 'ev__trigger-elicitation-request', arguments: {} }, undefined, { timeout: 20_000 });
    assert.equal(res.isError, true, JSON.stringify(res).slice(0, 400));
    const echo = await c.callTool({ name: 'ev__echo', arguments: { message: 'still here' } });
    assert.equal(L.resultText(echo), 'Echo: still here');
  });

  test('audit: each relayed request, and the one that could not be', async () => {
    for (const c of clients.splice(0)) await c.close();
    const entries = await L.readAudit(ws);
    const reqs = entries.filter((e) => e.action === 'upstream_request');
    assert.deepEqual(
      reqs.map((e) => [e.tool, e.upstream, e.details.method, e.details.outcome.split(':')[0]]),
      [
        ['ev__trigger-elicitation-request', 'ev', 'elicitation/create', 'relayed'],
        ['ev__trigger-sampling-request', 'ev', 'sampling/createMessage', 'relayed'],
        ['ev__trigger-elicitation-request', 'ev', 'elicitation/create', 'failed'],
      ],
    );
    assert.match(reqs[2].details.outcome, /does not support elicitation/);
    await L.assertVerified(ws);
  });
});
