// tsclient.mjs: the TypeScript SDK as an MCP client, for the integration
// tests (plain JavaScript, no build step).
//
//   MCP_AUTHZ_TSSDK=<node_modules> TSCLIENT_TOKEN=<bearer> node tsclient.mjs '<plan>'
//
// MCP_AUTHZ_TSSDK is the node_modules folder the Makefile installs the SDK
// into. The token comes through the environment, never the command line
// (where any local user could read it). The plan is JSON:
//
//   {"sdk": "sdk" | "client",   // @modelcontextprotocol/sdk 1.x, or its
//                               // successor @modelcontextprotocol/client 2.x
//    "url": "http://.../mcp",
//    "calls": [{"name": "...", "arguments": {...}}, ...],
//    "reads": ["uri", ...],
//    "prompts": [{"name": "...", "arguments": {...}}, ...]}
//
// It connects (1.x: initialize, 2025-11-25; 2.x: server/discover first,
// versionNegotiation auto), lists tools, makes each call, read and prompt
// get in turn and prints one JSON object: the negotiated version and each
// step's result or error ({code, message}), in the plan's order. It exits
// 1 only when it cannot connect.

import { createRequire } from 'node:module';
import path from 'node:path';

const plan = JSON.parse(process.argv[2]);
const token = process.env.TSCLIENT_TOKEN;
const modules = process.env.MCP_AUTHZ_TSSDK;
if (!modules || !token) {
  console.error('tsclient: MCP_AUTHZ_TSSDK and TSCLIENT_TOKEN must be set');
  process.exit(2);
}
const require = createRequire(path.join(modules, 'resolve.js'));

let Client, StreamableHTTPClientTransport, options;
if (plan.sdk === 'client') {
  ({ Client, StreamableHTTPClientTransport } = require('@modelcontextprotocol/client'));
  options = { versionNegotiation: { mode: 'auto' } };
} else {
  ({ Client } = require('@modelcontextprotocol/sdk/client/index.js'));
  ({ StreamableHTTPClientTransport } = require('@modelcontextprotocol/sdk/client/streamableHttp.js'));
  options = {};
}

const client = new Client({ name: 'tsclient', version: '1' }, options);
const transport = new StreamableHTTPClientTransport(new URL(plan.url), {
  requestInit: { headers: { Authorization: `Bearer ${token}` } },
});

// step runs one request, recording its result or its error.
async function step(fn) {
  try {
    return { result: await fn() };
  } catch (e) {
    return { error: { code: e.code ?? null, message: String(e.message ?? e) } };
  }
}

try {
  await client.connect(transport);
} catch (e) {
  console.log(JSON.stringify({ connect: { code: e.code ?? null, message: String(e.message ?? e) } }));
  process.exit(1);
}
const out = {
  version: client.getNegotiatedProtocolVersion?.() ?? transport.protocolVersion ?? null,
  tools: await step(async () => (await client.listTools()).tools.map((t) => t.name).sort()),
};
out.calls = [];
for (const c of plan.calls ?? []) out.calls.push(await step(() => client.callTool(c)));
out.reads = [];
for (const uri of plan.reads ?? []) out.reads.push(await step(() => client.readResource({ uri })));
out.prompts = [];
for (const p of plan.prompts ?? []) out.prompts.push(await step(() => client.getPrompt(p)));
await client.close();
console.log(JSON.stringify(out));
