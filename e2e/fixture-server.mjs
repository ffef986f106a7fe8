#!/usr/bin/env node
// An MCP server (2025-11-25) that implements every feature the server
// scenarios of @modelcontextprotocol/conformance exercise, written for the
// agentmesh end-to-end tests: the scenarios' test_* tools, resources and
// prompts, logging with per-session levels, resource subscriptions,
// completions, progress, sampling and elicitation. It is the upstream that
// conformance.test.mjs runs the suite against, directly and behind
// agentmesh, and equivalence.test.mjs compares with agentmesh's relay.
//
//   node fixture-server.mjs                 stdio (what agentmesh starts)
//   node fixture-server.mjs --http PORT     streamable HTTP on 127.0.0.1:PORT/mcp
//                                           (Host checked: DNS-rebinding protection)
//
// A few fixture_* extras exist for the equivalence test: a prompt argument
// with "required": false, a tool without annotations and one with an output
// schema, and a tool that updates the watched resource.
import { createServer } from 'node:http';
import { randomUUID } from 'node:crypto';

import { Server } from '@modelcontextprotocol/sdk/server/index.js';
import { StdioServerTransport } from '@modelcontextprotocol/sdk/server/stdio.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import {
  CallToolRequestSchema,
  CompleteRequestSchema,
  GetPromptRequestSchema,
  ListPromptsRequestSchema,
  ListResourcesRequestSchema,
  ListResourceTemplatesRequestSchema,
  ListToolsRequestSchema,
  ReadResourceRequestSchema,
  SetLevelRequestSchema,
  SubscribeRequestSchema,
  UnsubscribeRequestSchema,
} from '@modelcontextprotocol/sdk/types.js';

// A 1×1 red PNG and a 4-sample silent WAV.
const PNG =
  'iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8DwHwAFBQIAX8jx0gAAAABJRU5ErkJggg==';
const WAV = Buffer.concat([
  Buffer.from('RIFF'), u32(36 + 8), Buffer.from('WAVEfmt '), u32(16), u16(1), u16(1), u32(8000), u32(16000), u16(2), u16(16),
  Buffer.from('data'), u32(8), Buffer.alloc(8),
]).toString('base64');
function u32(n) { const b = Buffer.alloc(4); b.writeUInt32LE(n); return b; }
function u16(n) { const b = Buffer.alloc(2); b.writeUInt16LE(n); return b; }

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const empty = { type: 'object', properties: {} };

const TOOLS = [
  { name: 'test_simple_text', description: 'Returns a simple text response', inputSchema: empty },
  { name: 'test_image_content', description: 'Returns an image', inputSchema: empty },
  { name: 'test_audio_content', description: 'Returns audio', inputSchema: empty },
  { name: 'test_embedded_resource', description: 'Returns an embedded resource', inputSchema: empty },
  { name: 'test_multiple_content_types', description: 'Returns text, an image and a resource', inputSchema: empty },
  { name: 'test_tool_with_logging', description: 'Logs three messages while it runs', inputSchema: empty },
  { name: 'test_error_handling', description: 'Always fails', inputSchema: empty },
  { name: 'test_tool_with_progress', description: 'Reports progress 0, 50 and 100 of 100', inputSchema: empty },
  {
    name: 'test_sampling',
    description: 'Asks the client to sample a message',
    inputSchema: { type: 'object', properties: { prompt: { type: 'string', description: 'The prompt' } }, required: ['prompt'] },
  },
  {
    name: 'test_elicitation',
    description: 'Asks the user for a username and an e-mail address',
    inputSchema: { type: 'object', properties: { message: { type: 'string', description: 'What to ask' } }, required: ['message'] },
  },
  { name: 'test_elicitation_sep1034_defaults', description: 'Elicitation with defaults (SEP-1034)', inputSchema: empty },
  { name: 'test_elicitation_sep1330_enums', description: 'Elicitation with every enum form (SEP-1330)', inputSchema: empty },
  { name: 'test_reconnection', description: 'Answers after a pause (SSE polling)', inputSchema: empty },
  {
    name: 'json_schema_2020_12_tool',
    description: 'Tool with JSON Schema 2020-12 features',
    inputSchema: {
      $schema: 'https://json-schema.org/draft/2020-12/schema',
      type: 'object',
      $defs: { address: { type: 'object', properties: { street: { type: 'string' }, city: { type: 'string' } } } },
      properties: { name: { type: 'string' }, address: { $ref: '#/$defs/address' } },
      additionalProperties: false,
    },
  },
  {
    name: 'fixture_structured',
    title: 'Structured',
    description: 'Returns structured content',
    inputSchema: { type: 'object', properties: { zeta: { type: 'integer' }, alpha: { type: 'string' } }, 'x-order': ['zeta', 'alpha'] },
    outputSchema: { type: 'object', properties: { sum: { type: 'number' } }, required: ['sum'] },
    annotations: { readOnlyHint: true, openWorldHint: false },
  },
  { name: 'fixture_update_watched', description: 'Changes test://watched-resource (subscribers are told)', inputSchema: empty },
];

const RESOURCES = [
  { uri: 'test://static-text', name: 'static-text', description: 'A static text resource', mimeType: 'text/plain' },
  { uri: 'test://static-binary', name: 'static-binary', description: 'A static PNG', mimeType: 'image/png' },
  { uri: 'test://watched-resource', name: 'watched-resource', description: 'A resource that changes', mimeType: 'text/plain' },
];
const TEMPLATES = [
  { uriTemplate: 'test://template/{id}/data', name: 'template-data', description: 'Data for an id', mimeType: 'application/json' },
];
const PROMPTS = [
  { name: 'test_simple_prompt', description: 'A simple prompt' },
  {
    name: 'test_prompt_with_arguments',
    description: 'A prompt with two arguments',
    arguments: [
      { name: 'arg1', description: 'First test argument', required: true },
      { name: 'arg2', description: 'Second test argument', required: true },
    ],
  },
  {
    name: 'test_prompt_with_embedded_resource',
    description: 'A prompt embedding a resource',
    arguments: [{ name: 'resourceUri', description: 'URI of the resource to embed', required: true }],
  },
  { name: 'test_prompt_with_image', description: 'A prompt with an image' },
  {
    name: 'fixture_prompt_optional',
    description: 'A prompt with an optional argument',
    arguments: [
      { name: 'topic', description: 'What about', required: true },
      { name: 'tone', description: 'How', required: false },
    ],
  },
];

const SEP1034 = {
  type: 'object',
  properties: {
    name: { type: 'string', description: 'User name', default: 'John Doe' },
    age: { type: 'integer', description: 'User age', default: 30 },
    score: { type: 'number', description: 'User score', default: 95.5 },
    status: { type: 'string', description: 'User status', enum: ['active', 'inactive', 'pending'], default: 'active' },
    verified: { type: 'boolean', description: 'Verification status', default: true },
  },
  required: [],
};
const SEP1330 = {
  type: 'object',
  properties: {
    untitledSingle: { type: 'string', enum: ['option1', 'option2', 'option3'] },
    titledSingle: {
      type: 'string',
      oneOf: [
        { const: 'value1', title: 'First Option' },
        { const: 'value2', title: 'Second Option' },
        { const: 'value3', title: 'Third Option' },
      ],
    },
    legacyEnum: { type: 'string', enum: ['opt1', 'opt2', 'opt3'], enumNames: ['Option One', 'Option Two', 'Option Three'] },
    untitledMulti: { type: 'array', items: { type: 'string', enum: ['option1', 'option2', 'option3'] } },
    titledMulti: {
      type: 'array',
      items: {
        anyOf: [
          { const: 'value1', title: 'First Choice' },
          { const: 'value2', title: 'Second Choice' },
          { const: 'value3', title: 'Third Choice' },
        ],
      },
    },
  },
  required: [],
};

const LEVELS = ['debug', 'info', 'notice', 'warning', 'error', 'critical', 'alert', 'emergency'];

/** One server per client session (the SDK's Server holds one connection). */
function newServer() {
  const server = new Server(
    { name: 'agentmesh-e2e-fixture', version: '1.0.0' },
    { capabilities: { tools: {}, resources: { subscribe: true }, prompts: {}, logging: {}, completions: {} } },
  );
  let level = null; // set by logging/setLevel (the SDK's own handler is replaced below)
  const subscribed = new Set();
  let watched = 1;

  server.setRequestHandler(ListToolsRequestSchema, async () => ({ tools: TOOLS }));
  server.setRequestHandler(ListResourcesRequestSchema, async () => ({ resources: RESOURCES }));
  server.setRequestHandler(ListResourceTemplatesRequestSchema, async () => ({ resourceTemplates: TEMPLATES }));
  server.setRequestHandler(ListPromptsRequestSchema, async () => ({ prompts: PROMPTS }));

  server.setRequestHandler(SubscribeRequestSchema, async (req) => {
    subscribed.add(req.params.uri);
    return {};
  });
  server.setRequestHandler(UnsubscribeRequestSchema, async (req) => {
    subscribed.delete(req.params.uri);
    return {};
  });

  // logging/setLevel: the SDK registered a handler; this fixture keeps the
  // level itself so that it can filter what it logs during a request.
  server.removeRequestHandler('logging/setLevel');
  server.setRequestHandler(SetLevelRequestSchema, async (req) => {
    level = req.params.level;
    return {};
  });
  const log = (extra, lvl, data) => {
    if (level && LEVELS.indexOf(lvl) < LEVELS.indexOf(level)) return Promise.resolve();
    return extra.sendNotification({ method: 'notifications/message', params: { level: lvl, logger: 'fixture', data } });
  };

  server.setRequestHandler(ReadResourceRequestSchema, async (req) => {
    const { uri } = req.params;
    if (uri === 'test://static-text') {
      return { contents: [{ uri, mimeType: 'text/plain', text: 'This is the content of the static text resource.' }] };
    }
    if (uri === 'test://static-binary') return { contents: [{ uri, mimeType: 'image/png', blob: PNG }] };
    if (uri === 'test://watched-resource') {
      return { contents: [{ uri, mimeType: 'text/plain', text: `watched resource, version ${watched}` }] };
    }
    const m = /^test:\/\/template\/([^/]+)\/data$/.exec(uri);
    if (m) {
      const text = JSON.stringify({ id: m[1], templateTest: true, data: `Data for ID: ${m[1]}` });
      return { contents: [{ uri, mimeType: 'application/json', text }] };
    }
    throw Object.assign(new Error(`Resource ${uri} not found`), { code: -32002 });
  });

  server.setRequestHandler(GetPromptRequestSchema, async (req) => {
    const { name, arguments: args = {} } = req.params;
    const user = (content) => ({ role: 'user', content });
    switch (name) {
      case 'test_simple_prompt':
        return { messages: [user({ type: 'text', text: 'This is a simple prompt for testing.' })] };
      case 'test_prompt_with_arguments':
        return { messages: [user({ type: 'text', text: `Prompt with arguments: arg1='${args.arg1}', arg2='${args.arg2}'` })] };
      case 'test_prompt_with_embedded_resource':
        return {
          messages: [
            user({ type: 'resource', resource: { uri: args.resourceUri, mimeType: 'text/plain', text: 'Embedded resource content for testing.' } }),
            user({ type: 'text', text: 'Please process the embedded resource above.' }),
          ],
        };
      case 'test_prompt_with_image':
        return {
          messages: [user({ type: 'image', data: PNG, mimeType: 'image/png' }), user({ type: 'text', text: 'Please analyze the image above.' })],
        };
      case 'fixture_prompt_optional':
        return { messages: [user({ type: 'text', text: `About ${args.topic}${args.tone ? `, ${args.tone}` : ''}.` })] };
    }
    throw Object.assign(new Error(`Prompt ${name} not found`), { code: -32602 });
  });

  server.setRequestHandler(CompleteRequestSchema, async (req) => {
    const { ref, argument } = req.params;
    let pool = [];
    if (ref.type === 'ref/prompt' && ref.name === 'test_prompt_with_arguments') pool = ['paris', 'park', 'party', 'test-value', 'testing'];
    if (ref.type === 'ref/resource' && ref.uri === 'test://template/{id}/data') pool = ['123', '124', '200'];
    const values = pool.filter((v) => v.startsWith(argument.value ?? ''));
    return { completion: { values, total: values.length, hasMore: false } };
  });

  server.setRequestHandler(CallToolRequestSchema, async (req, extra) => {
    const { name, arguments: args = {} } = req.params;
    const text = (t) => ({ type: 'text', text: t });
    switch (name) {
      case 'test_simple_text':
        return { content: [text('This is a simple text response for testing.')] };
      case 'test_image_content':
        return { content: [{ type: 'image', data: PNG, mimeType: 'image/png' }] };
      case 'test_audio_content':
        return { content: [{ type: 'audio', data: WAV, mimeType: 'audio/wav' }] };
      case 'test_embedded_resource':
        return {
          content: [{ type: 'resource', resource: { uri: 'test://embedded-resource', mimeType: 'text/plain', text: 'This is an embedded resource content.' } }],
        };
      case 'test_multiple_content_types':
        return {
          content: [
            text('Multiple content types test:'),
            { type: 'image', data: PNG, mimeType: 'image/png' },
            { type: 'resource', resource: { uri: 'test://mixed-content-resource', mimeType: 'application/json', text: '{"test":"data","value":123}' } },
          ],
        };
      case 'test_tool_with_logging':
        await log(extra, 'info', 'Tool execution started');
        await sleep(50);
        await log(extra, 'info', 'Tool processing data');
        await sleep(50);
        await log(extra, 'info', 'Tool execution completed');
        await log(extra, 'debug', 'Tool debug detail');
        return { content: [text('Tool with logging executed successfully')] };
      case 'test_error_handling':
        return { isError: true, content: [text('This tool intentionally returns an error for testing')] };
      case 'test_tool_with_progress': {
        const token = req.params._meta?.progressToken;
        for (const progress of [0, 50, 100]) {
          if (token !== undefined) {
            await extra.sendNotification({ method: 'notifications/progress', params: { progressToken: token, progress, total: 100 } });
          }
          if (progress < 100) await sleep(50);
        }
        return { content: [text('Tool with progress executed successfully')] };
      }
      case 'test_sampling': {
        const res = await server.createMessage({
          messages: [{ role: 'user', content: { type: 'text', text: args.prompt } }],
          maxTokens: 100,
        });
        return { content: [text(`LLM response: ${res.content?.text ?? JSON.stringify(res.content)}`)] };
      }
      case 'test_elicitation': {
        const res = await server.elicitInput({
          message: args.message,
          requestedSchema: {
            type: 'object',
            properties: {
              username: { type: 'string', description: "User's response" },
              email: { type: 'string', description: "User's email address" },
            },
            required: ['username', 'email'],
          },
        });
        return { content: [text(`User response: action=${res.action}, content=${JSON.stringify(res.content ?? {})}`)] };
      }
      case 'test_elicitation_sep1034_defaults':
      case 'test_elicitation_sep1330_enums': {
        const schema = name.endsWith('defaults') ? SEP1034 : SEP1330;
        const res = await server.elicitInput({ message: `Please review (${name})`, requestedSchema: schema });
        return { content: [text(`Elicitation completed: action=${res.action}, content=${JSON.stringify(res.content ?? {})}`)] };
      }
      case 'test_reconnection':
        await sleep(50);
        return { content: [text('Reconnection test completed successfully')] };
      case 'json_schema_2020_12_tool':
        return { content: [text(`name=${args.name ?? ''}`)] };
      case 'fixture_structured': {
        const sum = Number(args.zeta ?? 0) + String(args.alpha ?? '').length;
        return { content: [text(JSON.stringify({ sum }))], structuredContent: { sum } };
      }
      case 'fixture_update_watched':
        watched++;
        if (subscribed.has('test://watched-resource')) await server.sendResourceUpdated({ uri: 'test://watched-resource' });
        return { content: [text(`watched resource is now version ${watched}`)] };
    }
    throw Object.assign(new Error(`Tool ${name} not found`), { code: -32602 });
  });
  return server;
}

async function serveHTTP(port) {
  const transports = new Map();
  const hosts = [`127.0.0.1:${port}`, `localhost:${port}`];
  const http = createServer(async (req, res) => {
    if (!req.url.startsWith('/mcp')) {
      res.writeHead(404).end();
      return;
    }
    const sid = req.headers['mcp-session-id'];
    let transport = sid ? transports.get(sid) : undefined;
    if (sid && !transport) {
      res.writeHead(404, { 'Content-Type': 'application/json' });
      res.end(JSON.stringify({ jsonrpc: '2.0', id: null, error: { code: -32001, message: 'Session not found' } }));
      return;
    }
    if (!transport) {
      transport = new StreamableHTTPServerTransport({
        sessionIdGenerator: () => randomUUID(),
        enableDnsRebindingProtection: true,
        allowedHosts: hosts,
        onsessioninitialized: (id) => transports.set(id, transport),
      });
      transport.onclose = () => transport.sessionId && transports.delete(transport.sessionId);
      await newServer().connect(transport);
    }
    await transport.handleRequest(req, res);
  });
  http.listen(port, '127.0.0.1', () => console.error(`fixture listening on http://127.0.0.1:${http.address().port}/mcp`));
}

const i = process.argv.indexOf('--http');
if (i >= 0) {
  await serveHTTP(Number(process.argv[i + 1] ?? 0));
} else {
  await newServer().connect(new StdioServerTransport());
}
