// An existing MCP server behind mcpgate: the SDK's reference server,
// @modelcontextprotocol/server-everything, in Streamable HTTP mode on a
// loopback port, mounted at /mcp/everything, driven by the official
// TypeScript SDK client through a real OAuth flow (discovery of the
// mount's own protected-resource metadata, DCR, authorize behind the
// proxy's headers, token with `resource` = the mount).
//
// Run: node --test tests/node/upstreams.test.mjs   (MCPGATE_BIN overrides the binary)

import assert from 'node:assert/strict';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';

import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { UnauthorizedError } from '@modelcontextprotocol/sdk/client/auth.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';

import {
  decodeJwt,
  formatLog,
  freePort,
  generateKeys,
  recordingFetch,
  removeDir,
  startEverything,
  startServer,
  tempDir,
  withTimeout,
  writeConfig,
} from './lib/harness.mjs';
import { HeadlessBrowserProvider } from './lib/provider.mjs';

const STEP_MS = 30_000;
const clientInfo = { name: 'mcpgate-node-upstreams', version: '0.0.0' };

describe('server-everything behind mcpgate, with the official SDK', { timeout: 180_000 }, () => {
  let dir;
  let server;
  let everything;
  let issuer;
  let mountUrl;
  let client;
  let transport;
  let provider;
  const fetch = recordingFetch({ timeoutMs: 60_000 });
  const dump = (label) =>
    `${label}\n--- HTTP ---\n${formatLog(fetch.log)}\n--- mcpgate ---\n${(server?.output() ?? '').slice(-4_000)}\n--- upstream ---\n${(everything?.output() ?? '').slice(-2_000)}`;

  before(async () => {
    dir = tempDir();
    const keysDir = path.join(dir, 'keys');
    generateKeys(keysDir);
    const upstreamPort = await freePort();
    everything = await startEverything(upstreamPort);
    const port = await freePort();
    issuer = `http://127.0.0.1:${port}`;
    mountUrl = `${issuer}/mcp/everything`;
    const config = writeConfig(path.join(dir, 'mcpgate.toml'), {
      port,
      keysDir,
      hosts: [{ issuer, redirect_uris: ['loopback'] }],
      extraLines: [
        '[[upstreams]]',
        'name = "everything"',
        `url = "http://127.0.0.1:${upstreamPort}/mcp"`,
        'forward_identity = "jwt"',
        // get-env would show the server's environment to anyone.
        'deny_tools = ["get-env"]',
        'timeout = "60s"',
      ],
    });
    server = await startServer(config, { expectPort: port });

    // Sign in the way an assistant does: 401 → metadata → DCR → authorize → token.
    const callbackPort = await freePort();
    const redirectUrl = `http://127.0.0.1:${callbackPort}/callback`;
    provider = new HeadlessBrowserProvider({
      redirectUrl,
      clientMetadata: {
        client_name: 'mcpgate upstream test',
        redirect_uris: [redirectUrl],
        grant_types: ['authorization_code', 'refresh_token'],
        response_types: ['code'],
        token_endpoint_auth_method: 'none',
      },
    });
    const t1 = new StreamableHTTPClientTransport(new URL(mountUrl), { authProvider: provider, fetch });
    let first;
    try {
      await withTimeout(new Client(clientInfo).connect(t1), STEP_MS, 'first connect');
    } catch (e) {
      first = e;
    }
    await t1.close().catch(() => {});
    assert.ok(first instanceof UnauthorizedError, dump(`first connect: ${first}`));
    const a = provider.lastAuthorization();
    assert.equal(a?.status, 302, dump('authorize'));
    assert.deepEqual(new URL(a.url).searchParams.getAll('resource'), [mountUrl], 'the SDK asks for the mount');
    await withTimeout(t1.finishAuth(a.params.code[0]), STEP_MS, 'finishAuth');
    assert.equal(decodeJwt(provider.tokens().access_token).payload.aud, mountUrl, 'the token is for the mount');

    transport = new StreamableHTTPClientTransport(new URL(mountUrl), { authProvider: provider, fetch });
    client = new Client(clientInfo);
    await withTimeout(client.connect(transport), STEP_MS, 'connect with the token').catch((e) => {
      throw new Error(dump(`connect: ${e}`));
    });
  });

  after(async () => {
    await client?.close().catch(() => {});
    await server?.stop();
    everything?.stop();
    removeDir(dir);
  });

  it('finds the mount by its own protected resource metadata', () => {
    const prm = fetch.log.find((e) => e.url === `${issuer}/.well-known/oauth-protected-resource/mcp/everything`);
    assert.ok(prm, dump('no request for the mount metadata'));
    assert.equal(prm.status, 200);
    assert.ok(transport.sessionId, 'server-everything gave a session id through the proxy');
  });

  it('tools/list passes, without the denied tool', async () => {
    const { tools } = await withTimeout(client.listTools(), STEP_MS, 'tools/list');
    const names = tools.map((t) => t.name);
    assert.ok(names.includes('echo') && names.includes('trigger-long-running-operation'), JSON.stringify(names));
    assert.ok(!names.includes('get-env'), 'deny_tools hides get-env');
  });

  it('tools/call echo', async () => {
    const r = await withTimeout(client.callTool({ name: 'echo', arguments: { message: 'through mcpgate' } }), STEP_MS, 'echo');
    assert.match(r.content[0].text, /through mcpgate/);
  });

  it('a denied tool is refused by mcpgate, naming it', async () => {
    await assert.rejects(
      withTimeout(client.callTool({ name: 'get-env', arguments: {} }), STEP_MS, 'get-env'),
      (e) => e.code === -32001 && /get-env/.test(e.message) && /not granted/.test(e.message),
    );
  });

  it('a long-running tool streams its progress over SSE', async () => {
    const progress = [];
    const r = await withTimeout(
      client.callTool({ name: 'trigger-long-running-operation', arguments: { duration: 2, steps: 4 } }, undefined, {
        onprogress: (p) => progress.push(p),
        timeout: STEP_MS,
      }),
      STEP_MS,
      'long-running operation',
    );
    assert.equal(progress.length, 4, `progress notifications: ${JSON.stringify(progress)}`);
    assert.deepEqual(progress.map((p) => p.progress), [1, 2, 3, 4]);
    assert.match(r.content[0].text, /completed/i);
  });

  it('resources/read and prompts/get', async () => {
    const { resources } = await withTimeout(client.listResources(), STEP_MS, 'resources/list');
    assert.ok(resources.length > 0);
    const read = await withTimeout(client.readResource({ uri: resources[0].uri }), STEP_MS, 'resources/read');
    assert.equal(read.contents[0].uri, resources[0].uri);
    const prompt = await withTimeout(client.getPrompt({ name: 'simple-prompt' }), STEP_MS, 'prompts/get');
    assert.ok(prompt.messages.length > 0);
  });

  it('the GET stream opens, and DELETE ends the session', async () => {
    const get = fetch.log.find((e) => e.method === 'GET' && e.url === mountUrl);
    assert.ok(get, dump('the SDK opened no GET stream'));
    assert.equal(get.status, 200, dump('GET stream'));
    await withTimeout(transport.terminateSession(), STEP_MS, 'DELETE');
    const del = fetch.log.find((e) => e.method === 'DELETE' && e.url === mountUrl);
    assert.equal(del?.status, 200, dump('DELETE'));
    assert.equal(transport.sessionId, undefined);
  });
});
