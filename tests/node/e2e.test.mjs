// Real-client end-to-end tests: the official MCP TypeScript SDK (Client +
// StreamableHTTPClientTransport + an OAuthClientProvider) against the mcpgate
// binary, over loopback HTTP.
//
// The browser step is played by HeadlessBrowserProvider.redirectToAuthorization:
// it GETs the authorization URL with the X-Forwarded-Email header that
// oauth2-proxy adds after Google sign-in (mcpgate trusts it from 127.0.0.1),
// reads the 302 Location, and the test hands the code to transport.finishAuth().
//
// Run: node --test tests/node/e2e.test.mjs   (MCPGATE_BIN overrides the binary)

import assert from 'node:assert/strict';
import http from 'node:http';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';

import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { UnauthorizedError } from '@modelcontextprotocol/sdk/client/auth.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';

import {
  EMAIL,
  authorizationUrl,
  browse,
  decodeJwt,
  formatLog,
  freePort,
  generateKeys,
  pkce,
  recordingFetch,
  registerClient,
  removeDir,
  startServer,
  tempDir,
  tokenRequest,
  withTimeout,
  writeConfig,
} from './lib/harness.mjs';
import { HeadlessBrowserProvider } from './lib/provider.mjs';

const CLAUDE_AI_CALLBACK = 'https://claude.ai/api/mcp/auth_callback';
const STEP_MS = 20_000; // bound on any single SDK step
const TEST_MS = 90_000; // bound on any single test

const clientInfo = { name: 'mcpgate-node-e2e', version: '0.0.0' };

function dump(label, log, server) {
  return `${label}\n--- HTTP traffic ---\n${formatLog(log)}\n--- server output (tail) ---\n${(server?.output() ?? '').slice(-4_000)}`;
}

/**
 * The whole SDK flow against one MCP server URL:
 * connect (401 → discovery → DCR → authorize in the "browser") → finishAuth(code)
 * → reconnect with a new transport → tools/list → tools/call whoami.
 */
async function sdkFlow({ serverUrl, issuer, provider, fetch, server, expectedRedirect }) {
  const log = fetch.log;
  const t1 = new StreamableHTTPClientTransport(new URL(serverUrl), { authProvider: provider, fetch });
  const c1 = new Client(clientInfo);
  let firstError;
  try {
    await withTimeout(c1.connect(t1), STEP_MS, 'first connect');
  } catch (e) {
    firstError = e;
  }
  await t1.close().catch(() => {});
  assert.ok(
    firstError instanceof UnauthorizedError,
    dump(`first connect should stop at the browser step (UnauthorizedError), got: ${firstError ?? 'success'}`, log, server),
  );

  const info = provider.clientInformation();
  assert.ok(info?.client_id, dump('dynamic client registration saved no client_id', log, server));
  assert.equal(info.client_secret, undefined, 'a public client must not get a client_secret');

  const a = provider.lastAuthorization();
  assert.ok(a, dump('the SDK never sent the browser to the authorization endpoint', log, server));
  const authUrl = new URL(a.url);
  assert.equal(`${authUrl.origin}${authUrl.pathname}`, `${issuer}/oauth/authorize`, 'authorization endpoint');
  assert.equal(
    a.status,
    302,
    dump(`GET ${a.url} with X-Forwarded-Email answered ${a.status}: ${a.body}`, log, server),
  );
  assert.equal(a.redirectedTo, expectedRedirect, `302 Location ${a.location}`);
  assert.deepEqual(a.params.state, [a.sentState], `state in ${a.location}`);
  assert.deepEqual(a.params.iss, [issuer], `RFC 9207 iss in ${a.location}`);
  assert.equal(a.params.error, undefined, `error in ${a.location}`);
  assert.equal(a.params.code?.length, 1, `exactly one code in ${a.location}`);
  const code = a.params.code[0];
  assert.ok(code.length > 0, 'empty code');

  await withTimeout(t1.finishAuth(code), STEP_MS, 'finishAuth (token exchange)').catch((e) => {
    throw new Error(dump(`finishAuth failed: ${e}`, log, server));
  });
  const tokens = provider.tokens();
  assert.ok(tokens?.access_token, dump('no access_token saved after finishAuth', log, server));
  assert.match(tokens.token_type ?? '', /^bearer$/i, 'token_type');

  const t2 = new StreamableHTTPClientTransport(new URL(serverUrl), { authProvider: provider, fetch });
  const client = new Client(clientInfo);
  try {
    await withTimeout(client.connect(t2), STEP_MS, 'connect with token');
  } catch (e) {
    throw new Error(dump(`connect with the new token failed: ${e}`, log, server));
  }
  try {
    const tools = await withTimeout(client.listTools(), STEP_MS, 'tools/list');
    const whoami = await withTimeout(client.callTool({ name: 'whoami', arguments: {} }), STEP_MS, 'tools/call whoami');
    return { tools, whoami, clientId: info.client_id, tokens, code };
  } catch (e) {
    throw new Error(dump(`MCP call failed: ${e}`, log, server));
  } finally {
    await client.close().catch(() => {});
  }
}

function assertTools(tools) {
  const names = tools.tools.map((t) => t.name);
  assert.ok(names.includes('whoami'), `tools/list: ${JSON.stringify(names)}`);
}

function assertWhoami(whoami, { clientId }) {
  assert.notEqual(whoami.isError, true, `whoami isError: ${JSON.stringify(whoami)}`);
  const text = (whoami.content ?? []).filter((c) => c.type === 'text').map((c) => c.text).join('\n');
  assert.ok(text.includes(EMAIL), `whoami text should name ${EMAIL}: ${text}`);
  const sc = whoami.structuredContent;
  assert.ok(sc && typeof sc === 'object', `whoami structuredContent: ${JSON.stringify(whoami)}`);
  assert.equal(sc.email, EMAIL, `structuredContent.email: ${JSON.stringify(sc)}`);
  assert.equal(sc.client_id, clientId, `structuredContent.client_id: ${JSON.stringify(sc)}`);
}

function assertAccessToken(accessToken, { issuer, clientId }) {
  const { header, payload } = decodeJwt(accessToken);
  assert.equal(header.typ?.toLowerCase(), 'at+jwt', `JWS typ (RFC 9068): ${JSON.stringify(header)}`);
  assert.ok(header.kid, `JWS kid: ${JSON.stringify(header)}`);
  assert.equal(payload.iss, issuer, `iss: ${JSON.stringify(payload)}`);
  assert.equal(payload.client_id, clientId, `client_id claim: ${JSON.stringify(payload)}`);
  const aud = [].concat(payload.aud ?? []);
  assert.ok(aud.includes(`${issuer}/mcp`), `aud should include ${issuer}/mcp: ${JSON.stringify(payload)}`);
  assert.ok(Number.isInteger(payload.exp) && payload.exp > Date.now() / 1000, `exp: ${JSON.stringify(payload)}`);
}

/** An MCP client that only presents a bearer token (no OAuth provider: a 401 is a plain failure). */
async function whoamiWithBearer(serverUrl, accessToken, fetch) {
  const transport = new StreamableHTTPClientTransport(new URL(serverUrl), {
    fetch,
    requestInit: { headers: { Authorization: `Bearer ${accessToken}` } },
  });
  const client = new Client(clientInfo);
  try {
    await withTimeout(client.connect(transport), STEP_MS, `connect ${serverUrl}`);
    return await withTimeout(client.callTool({ name: 'whoami', arguments: {} }), STEP_MS, 'tools/call whoami');
  } finally {
    await client.close().catch(() => {});
  }
}

describe('mcpgate with the official MCP TypeScript SDK', { timeout: 5 * TEST_MS }, () => {
  let dir;
  let server;
  let port;
  let internal; // "internal" host: loopback callbacks (Claude Code, Cursor)
  let publicHost; // "public" host: allowlisted cloud callbacks (claude.ai)
  const results = {};

  before(async () => {
    dir = tempDir();
    const keysDir = path.join(dir, 'keys');
    generateKeys(keysDir);
    port = await freePort();
    internal = `http://127.0.0.1:${port}`;
    publicHost = `http://localhost:${port}`;
    const config = writeConfig(path.join(dir, 'mcpgate.toml'), {
      port,
      keysDir,
      hosts: [
        { issuer: internal, redirect_uris: ['loopback'] },
        { issuer: publicHost, redirect_uris: [CLAUDE_AI_CALLBACK, 'loopback'] },
      ],
    });
    server = await startServer(config, { expectPort: port });
  });

  after(async () => {
    await server?.stop();
    removeDir(dir);
  });

  it('(a) internal host, loopback callback http://localhost:<port>/callback (Claude Code-like)', { timeout: TEST_MS }, async (t) => {
    const callbackPort = await freePort();
    const redirectUrl = `http://localhost:${callbackPort}/callback`;
    const provider = new HeadlessBrowserProvider({
      redirectUrl,
      clientMetadata: {
        client_name: 'mcpgate e2e (Claude Code-like)',
        redirect_uris: [redirectUrl],
        grant_types: ['authorization_code', 'refresh_token'],
        response_types: ['code'],
        token_endpoint_auth_method: 'none',
      },
    });
    const fetch = recordingFetch();
    const r = await sdkFlow({
      serverUrl: `${internal}/mcp`,
      issuer: internal,
      provider,
      fetch,
      server,
      expectedRedirect: redirectUrl,
    });
    assertTools(r.tools);
    assertWhoami(r.whoami, r);
    assertAccessToken(r.tokens.access_token, { issuer: internal, clientId: r.clientId });
    results.a = { ...r, provider, fetch };
    const dcr = fetch.log.find((e) => e.request);
    t.diagnostic(`DCR request: ${dcr?.request}`);
    t.diagnostic(`authorize scope: ${new URL(provider.lastAuthorization().url).searchParams.get('scope') ?? '(none)'}`);
    t.diagnostic(`access token claims: ${JSON.stringify(decodeJwt(r.tokens.access_token).payload)}`);
    t.diagnostic(`whoami: ${JSON.stringify(r.whoami.structuredContent)}`);
  });

  it('(a2) raw DCR and authorize with no scope at all, then the token works at /mcp', { timeout: TEST_MS }, async (t) => {
    // The SDK sends the protected resource's scopes_supported when it has
    // some, so (a) may carry a scope; this case is a client that sends none.
    const redirectUri = `http://localhost:${await freePort()}/callback`;
    const reg = await registerClient(internal, redirectUri);
    assert.ok(reg.client_id, JSON.stringify(reg));
    const { verifier, challenge } = pkce();
    const url = authorizationUrl(internal, { clientId: reg.client_id, redirectUri, challenge, state: 'no-scope' });
    const r = await browse(url);
    assert.equal(r.status, 302, `${r.status} ${r.body}`);
    const loc = new URL(r.location);
    assert.equal(`${loc.origin}${loc.pathname}`, redirectUri, r.location);
    assert.equal(loc.searchParams.get('state'), 'no-scope', r.location);
    assert.equal(loc.searchParams.get('iss'), internal, r.location);
    const tr = await tokenRequest(internal, {
      grant_type: 'authorization_code',
      code: loc.searchParams.get('code'),
      redirect_uri: redirectUri,
      client_id: reg.client_id,
      code_verifier: verifier,
      resource: `${internal}/mcp`,
    });
    assert.equal(tr.status, 200, tr.text);
    assert.match(tr.headers.get('cache-control') ?? '', /no-store/, 'Cache-Control of the token response');
    assert.ok(tr.body.access_token, tr.text);
    t.diagnostic(`token response scope: ${tr.body.scope ?? '(none)'}`);
    assertAccessToken(tr.body.access_token, { issuer: internal, clientId: reg.client_id });
    const w = await whoamiWithBearer(`${internal}/mcp`, tr.body.access_token, recordingFetch());
    assertWhoami(w, { clientId: reg.client_id });
  });

  it('(b) public host, claude.ai callback', { timeout: TEST_MS }, async () => {
    const provider = new HeadlessBrowserProvider({
      redirectUrl: CLAUDE_AI_CALLBACK,
      clientMetadata: {
        client_name: 'mcpgate e2e (claude.ai-like)',
        redirect_uris: [CLAUDE_AI_CALLBACK],
        grant_types: ['authorization_code', 'refresh_token'],
        response_types: ['code'],
        token_endpoint_auth_method: 'none',
        application_type: 'web',
      },
    });
    const fetch = recordingFetch();
    const r = await sdkFlow({
      serverUrl: `${publicHost}/mcp`,
      issuer: publicHost,
      provider,
      fetch,
      server,
      expectedRedirect: CLAUDE_AI_CALLBACK,
    });
    assertTools(r.tools);
    assertWhoami(r.whoami, r);
    assertAccessToken(r.tokens.access_token, { issuer: publicHost, clientId: r.clientId });
    results.b = { ...r, provider, fetch };
  });

  it('(c) a token minted on one host is accepted on the other host', { timeout: TEST_MS }, async (t) => {
    assert.ok(results.a, 'needs the token of case (a)');
    const fetch = recordingFetch();
    let whoami;
    try {
      whoami = await whoamiWithBearer(`${publicHost}/mcp`, results.a.tokens.access_token, fetch);
    } catch (e) {
      throw new Error(dump(`internal-host token on ${publicHost}/mcp: ${e}`, fetch.log, server));
    }
    assertWhoami(whoami, results.a);
    if (results.b) {
      await t.test('and the other way round', async () => {
        const fetch2 = recordingFetch();
        let w;
        try {
          w = await whoamiWithBearer(`${internal}/mcp`, results.b.tokens.access_token, fetch2);
        } catch (e) {
          throw new Error(dump(`public-host token on ${internal}/mcp: ${e}`, fetch2.log, server));
        }
        assertWhoami(w, results.b);
      });
    }
  });

  it('refresh_token grant through the SDK rotates the refresh token', { timeout: TEST_MS }, async () => {
    assert.ok(results.a, 'needs case (a)');
    const { provider } = results.a;
    const before = provider.tokens();
    assert.ok(before.refresh_token, 'no refresh_token was issued in case (a) (the design default is 30d)');
    const { auth } = await import('@modelcontextprotocol/sdk/client/auth.js');
    const fetch = recordingFetch();
    const result = await withTimeout(
      auth(provider, { serverUrl: new URL(`${internal}/mcp`), fetchFn: fetch }),
      STEP_MS,
      'refresh',
    ).catch((e) => {
      throw new Error(dump(`refresh failed: ${e}`, fetch.log, server));
    });
    assert.equal(result, 'AUTHORIZED', dump('refresh should not need the browser', fetch.log, server));
    const after = provider.tokens();
    assert.notEqual(after.access_token, before.access_token, 'a new access token');
    assert.ok(after.refresh_token, 'a rotated refresh token');
    assert.notEqual(after.refresh_token, before.refresh_token, 'refresh token rotated on use');
    const w = await whoamiWithBearer(`${internal}/mcp`, after.access_token, recordingFetch());
    assertWhoami(w, results.a);
  });

  describe('refusals', () => {
    it('/mcp without a token: 401 with WWW-Authenticate resource_metadata', async () => {
      const res = await fetch(`${internal}/mcp`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream' },
        body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/list' }),
        signal: AbortSignal.timeout(10_000),
      });
      const body = await res.text();
      assert.equal(res.status, 401, body);
      const www = res.headers.get('www-authenticate') ?? '';
      assert.match(www, /^Bearer\b/i, www);
      assert.ok(
        www.includes(`resource_metadata="${internal}/.well-known/oauth-protected-resource/mcp"`),
        `WWW-Authenticate: ${www}`,
      );
    });

    /** A fresh raw client on the internal host and an authorization URL for it. */
    async function rawAuthorization() {
      const redirectUri = `http://127.0.0.1:${await freePort()}/callback`;
      const reg = await registerClient(internal, redirectUri);
      const { verifier, challenge } = pkce();
      const url = authorizationUrl(internal, { clientId: reg.client_id, redirectUri, challenge });
      return { reg, redirectUri, verifier, url };
    }

    it('authorize without the oauth2-proxy identity header: 401, never a redirect', async () => {
      const { url } = await rawAuthorization();
      const r = await browse(url, { email: null });
      assert.equal(r.status, 401, `${r.status} Location: ${r.location} body: ${r.body}`);
      assert.equal(r.location, null);
    });

    it('authorize for a person outside the allowed domains: no code', async () => {
      const { url } = await rawAuthorization();
      const r = await browse(url, { email: 'mallory@evil.example' });
      const code = r.location ? new URL(r.location, url).searchParams.get('code') : null;
      assert.ok(r.status >= 300, `${r.status} ${r.body}`);
      assert.equal(code, null, `${r.status} Location: ${r.location}`);
    });

    it('a request for a host that is not configured: 421', async () => {
      // fetch cannot set Host, so a raw request
      const status = await new Promise((resolve, reject) => {
        const req = http.get(
          { host: '127.0.0.1', port, path: '/.well-known/oauth-authorization-server', headers: { host: 'evil.example' }, timeout: 10_000 },
          (res) => {
            res.resume();
            res.on('end', () => resolve(res.statusCode));
          },
        );
        req.on('timeout', () => req.destroy(new Error('timeout')));
        req.on('error', reject);
      });
      assert.equal(status, 421);
    });

    it('public host refuses to register a callback outside its allowlist', async () => {
      const res = await fetch(`${publicHost}/oauth/register`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({
          client_name: 'evil',
          redirect_uris: ['https://evil.example/callback'],
          token_endpoint_auth_method: 'none',
          grant_types: ['authorization_code'],
          response_types: ['code'],
        }),
        signal: AbortSignal.timeout(10_000),
      });
      const body = await res.text();
      assert.equal(res.status, 400, body);
      assert.equal(JSON.parse(body).error, 'invalid_redirect_uri', body);
    });

    it('a code with a wrong PKCE verifier: 400 invalid_grant', async () => {
      const { reg, redirectUri, url } = await rawAuthorization();
      const r = await browse(url);
      assert.equal(r.status, 302, `${r.status} ${r.body}`);
      const code = new URL(r.location).searchParams.get('code');
      assert.ok(code, r.location);
      const res = await fetch(`${internal}/oauth/token`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({
          grant_type: 'authorization_code',
          code,
          redirect_uri: redirectUri,
          client_id: reg.client_id,
          code_verifier: pkce().verifier,
        }),
        signal: AbortSignal.timeout(10_000),
      });
      const body = await res.text();
      assert.equal(res.status, 400, body);
      assert.equal(JSON.parse(body).error, 'invalid_grant', body);
    });
  });
});

describe('two replicas sharing only keys/ and the config', { timeout: 3 * TEST_MS }, () => {
  // A load balancer in front of two replicas is simulated in the client's
  // fetch: every request goes to replica A except POST /oauth/token, which is
  // sent to replica B's port with the Host header of A's issuer, exactly what
  // a load balancer does. Both replicas are configured with both issuers as
  // hosts (issuers carry the port here), so either can serve a request for
  // A's issuer. So: the client is registered by A (sealed client_id), the
  // code is minted by A and exchanged at B, the access token is signed by B
  // and then used at A and at B.
  let dir;
  let replicaA;
  let replicaB;
  let issuerA;

  before(async () => {
    dir = tempDir();
    const keysDir = path.join(dir, 'keys');
    generateKeys(keysDir);
    const [portA, portB] = [await freePort(), await freePort()];
    issuerA = `http://127.0.0.1:${portA}`;
    const hosts = [
      { issuer: issuerA, redirect_uris: ['loopback'] },
      { issuer: `http://127.0.0.1:${portB}`, redirect_uris: ['loopback'] },
    ];
    const cfgA = writeConfig(path.join(dir, 'a.toml'), { port: portA, keysDir, hosts });
    const cfgB = writeConfig(path.join(dir, 'b.toml'), { port: portB, keysDir, hosts });
    [replicaA, replicaB] = await Promise.all([
      startServer(cfgA, { expectPort: portA, name: 'replica-a' }),
      startServer(cfgB, { expectPort: portB, name: 'replica-b' }),
    ]);
  });

  after(async () => {
    await Promise.all([replicaA?.stop(), replicaB?.stop()]);
    removeDir(dir);
  });

  it('(d) authorize on one replica, token exchange on the other', { timeout: TEST_MS }, async () => {
    const both = { output: () => `${replicaA.output()}${replicaB.output()}` };
    const callbackPort = await freePort();
    const redirectUrl = `http://127.0.0.1:${callbackPort}/callback`;
    const provider = new HeadlessBrowserProvider({
      redirectUrl,
      clientMetadata: {
        client_name: 'mcpgate e2e (replicas)',
        redirect_uris: [redirectUrl],
        grant_types: ['authorization_code', 'refresh_token'],
        response_types: ['code'],
        token_endpoint_auth_method: 'none',
      },
    });
    const toB = (url, init) =>
      url.origin === issuerA && url.pathname === '/oauth/token' && (init?.method ?? 'GET').toUpperCase() === 'POST'
        ? { port: replicaB.port }
        : undefined;
    const fetch = recordingFetch({ route: toB });
    const r = await sdkFlow({
      serverUrl: `${issuerA}/mcp`,
      issuer: issuerA,
      provider,
      fetch,
      server: both,
      expectedRedirect: redirectUrl,
    });
    const tokenCalls = fetch.log.filter((e) => e.url === `${issuerA}/oauth/token`);
    assert.ok(tokenCalls.length >= 1, 'a token request was made');
    assert.ok(
      tokenCalls.every((e) => e.routedTo === `127.0.0.1:${replicaB.port}`),
      `every token request went to replica B: ${formatLog(tokenCalls)}`,
    );
    const authorizeRegister = fetch.log.filter((e) => /\/oauth\/register$/.test(e.url));
    assert.ok(authorizeRegister.every((e) => !e.routedTo), 'registration served by replica A');
    assertTools(r.tools);
    assertWhoami(r.whoami, r); // served by A with the token B signed
    assertAccessToken(r.tokens.access_token, { issuer: issuerA, clientId: r.clientId });

    // The same token at replica B's /mcp, still for A's host (Host header kept).
    const fetchB = recordingFetch({ route: (url) => (url.origin === issuerA ? { port: replicaB.port } : undefined) });
    let w;
    try {
      w = await whoamiWithBearer(`${issuerA}/mcp`, r.tokens.access_token, fetchB);
    } catch (e) {
      throw new Error(dump(`token at replica B /mcp: ${e}`, fetchB.log, both));
    }
    assertWhoami(w, r);
  });
});
