// require_approval through MCP elicitation (2025-11-25, "Elicitation"),
// with the official SDK client over stdio: a client that can ask its user
// gets the form; the user's accept lets the call run, a decline refuses it;
// a client without the elicitation capability is refused with "approval
// required". Every answer is in the audit log.
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';

import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { ElicitRequestSchema } from '@modelcontextprotocol/sdk/types.js';

import * as L from './lib.mjs';

const POLICY = `policies:
  - name: humans
    rules:
      - name: listing-needs-a-human
        condition: 'tool == "filesystem_list"'
        action: require_approval
        message: "listing a directory needs a human"
`;

describe('require_approval asks the user through elicitation', { timeout: 60_000 }, () => {
  let ws;
  const clients = [];
  const asked = [];
  let answer = 'accept';

  async function connect(name, capabilities) {
    const transport = new StdioClientTransport({ command: L.BIN, args: ws.serveArgs(), env: ws.env, stderr: 'pipe' });
    const client = new Client({ name, version: '1.0.0' }, { capabilities });
    if (capabilities.elicitation) {
      client.setRequestHandler(ElicitRequestSchema, async (req) => {
        asked.push(req.params);
        return answer === 'accept' ? { action: 'accept', content: { approve: true } } : { action: answer };
      });
    }
    await client.connect(transport);
    clients.push(client);
    return client;
  }

  before(() => {
    ws = L.makeWorkspace({ name: 'approval' });
    writeFileSync(join(ws.dir, 'approval.yaml'), POLICY);
    writeFileSync(ws.config, readFileSync(ws.config, 'utf8').replace('policies: {paths: []}', 'policies: {paths: [approval.yaml]}'));
  });
  after(async () => {
    for (const c of clients) await c.close();
    ws.cleanup();
  });

  test('accept runs the call; decline refuses it; the form shows the call', async () => {
    const c = await connect('asks-its-user', { elicitation: {} });
    const ok = await c.callTool({ name: 'filesystem_list', arguments: { path: '/data' } });
    assert.equal(ok.isError, undefined, `approved call: ${JSON.stringify(ok).slice(0, 300)}`);
    assert.match(L.resultText(ok), /reports/, 'the listing of /data');
    assert.equal(asked.length, 1, 'the user was asked once');
    assert.match(asked[0].message, /filesystem_list/);
    assert.match(asked[0].message, /"path":"\/data"/);
    assert.match(asked[0].message, /listing a directory needs a human/);
    assert.deepEqual(asked[0].requestedSchema.required, ['approve']);

    answer = 'decline';
    const no = await c.callTool({ name: 'filesystem_list', arguments: { path: '/data/reports' } });
    assert.equal(no.isError, true);
    assert.match(L.resultText(no), /the user answered decline/);
    // A rule that does not ask is not affected.
    const read = await c.callTool({ name: 'filesystem_read', arguments: { path: '/data/reports/q1.csv' } });
    assert.equal(read.isError, undefined);
    assert.equal(asked.length, 2, 'only the held calls asked');
  });

  test('a client that cannot ask is refused with "approval required"', async () => {
    const c = await connect('cannot-ask', {});
    const res = await c.callTool({ name: 'filesystem_list', arguments: { path: '/data' } });
    assert.equal(res.isError, true);
    assert.match(L.resultText(res), /^approval required: listing a directory needs a human/);
  });

  test('audit: the approval, the decline and the refusal, each with its reason', async () => {
    for (const c of clients.splice(0)) await c.close();
    const lists = L.invocations(await L.readAudit(ws)).filter((e) => e.tool === 'filesystem_list');
    assert.deepEqual(lists.map((e) => e.result), ['allowed', 'blocked', 'blocked']);
    assert.match(lists[0].reason, /^approved by the user \(accept\)/);
    assert.ok(lists[0].rules.includes('builtin:user-approval') && lists[0].rules.includes('humans/listing-needs-a-human'), JSON.stringify(lists[0].rules));
    assert.match(lists[1].reason, /the user answered decline/);
    assert.equal(lists[1].client, 'asks-its-user');
    assert.match(lists[2].reason, /^approval required/);
    assert.equal(lists[2].client, 'cannot-ask');
    await L.assertVerified(ws);
  });
});
