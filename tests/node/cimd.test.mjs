// Client ID Metadata Documents with the official MCP TypeScript SDK: its
// client-metadata-URL support (`clientMetadataUrl` on the OAuthClientProvider;
// the SDK uses the URL as client_id when the authorization server advertises
// client_id_metadata_document_supported) through the whole flow, on both
// hosts, through two replicas behind a round-robin balancer.
//
// The documents come from a local https server whose certificate a test CA
// (made here with the openssl CLI) signs; mcpgate trusts that CA and loopback
// addresses only through its `cimd.insecure_test_only_*` settings. The
// balancer forwards each request to the next replica, keeping the Host
// header, so authorize and token land on different replicas and each
// fetches the document itself.
//
// Run: node --test tests/node/cimd.test.mjs

import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { writeFileSync, readFileSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';

import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { UnauthorizedError } from '@modelcontextprotocol/sdk/client/auth.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';

import {
  EMAIL,
  decodeJwt,
  formatLog,
  freePort,
  generateKeys,
  recordingFetch,
  removeDir,
  startServer,
  tempDir,
  withTimeout,
  writeConfig,
} from './lib/harness.mjs';
import { HeadlessBrowserProvider } from './lib/provider.mjs';

const CLAUDE_AI_CALLBACK = 'https://claude.ai/api/mcp/auth_callback';
const STEP_MS = 20_000;
const TEST_MS = 90_000;

/** A provider whose client is a metadata document URL. */
class DocumentClientProvider extends HeadlessBrowserProvider {
  constructor(o) {
    super(o);
    this._clientMetadataUrl = o.clientMetadataUrl;
  }

  get clientMetadataUrl() {
    return this._clientMetadataUrl;
  }
}

/** A test CA and a certificate for 127.0.0.1 / localhost it signs. */
function makeCerts(dir) {
  const f = (n) => path.join(dir, n);
  const openssl = (...args) => execFileSync('openssl', args, { stdio: ['ignore', 'pipe', 'pipe'] });
  openssl('req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes',
    '-keyout', f('ca.key'), '-out', f('ca.pem'), '-days', '2', '-subj', '/CN=mcpgate test CA',
    '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign');
  openssl('req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes',
    '-keyout', f('leaf.key'), '-out', f('leaf.csr'), '-subj', '/CN=127.0.0.1');
  writeFileSync(f('leaf.ext'), [
    'subjectAltName=IP:127.0.0.1,DNS:localhost',
    'basicConstraints=critical,CA:FALSE',
    'keyUsage=critical,digitalSignature',
    'extendedKeyUsage=serverAuth',
  ].join('\n'));
  openssl('x509', '-req', '-in', f('leaf.csr'), '-CA', f('ca.pem'), '-CAkey', f('ca.key'),
    '-CAcreateserial', '-out', f('leaf.pem'), '-days', '2', '-extfile', f('leaf.ext'));
  return { ca: f('ca.pem'), key: readFileSync(f('leaf.key')), cert: readFileSync(f('leaf.pem')) };
}

/** The https document server: path → JSON document; counts requests per path. */
function startDocServer({ key, cert }, port) {
  const docs = new Map();
  const hits = new Map();
  const server = https.createServer({ key, cert }, (req, res) => {
    const p = new URL(req.url, 'https://x').pathname;
    hits.set(p, (hits.get(p) ?? 0) + 1);
    const doc = docs.get(p);
    if (!doc) {
      res.writeHead(404).end();
      return;
    }
    res.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'max-age=3600' });
    res.end(JSON.stringify(doc));
  });
  return new Promise((resolve) => {
    server.listen(port, '127.0.0.1', () =>
      resolve({
        url: (p) => `https://127.0.0.1:${port}${p}`,
        set: (p, doc) => docs.set(p, doc),
        hits: (p) => hits.get(p) ?? 0,
        close: () => new Promise((r) => server.close(r)),
      }),
    );
  });
}

/** A balancer on `port`: each request goes to the next backend port, Host unchanged. */
function startBalancer(port, backends) {
  let next = 0;
  const used = backends.map(() => 0);
  const server = http.createServer((req, res) => {
    const i = next++ % backends.length;
    used[i]++;
    const up = http.request(
      { host: '127.0.0.1', port: backends[i], method: req.method, path: req.url, headers: req.headers },
      (r) => {
        res.writeHead(r.statusCode, r.headers);
        r.pipe(res);
      },
    );
    up.on('error', (e) => {
      res.writeHead(502).end(String(e));
    });
    req.pipe(up);
  });
  return new Promise((resolve) => {
    server.listen(port, '127.0.0.1', () =>
      resolve({ used, close: () => new Promise((r) => { server.closeAllConnections?.(); server.close(r); }) }),
    );
  });
}

describe('Client ID Metadata Documents with the official MCP TypeScript SDK', { timeout: 4 * TEST_MS }, () => {
  let dir;
  let docs;
  let balancer;
  const replicas = [];
  let internal;
  let publicHost;

  before(async () => {
    dir = tempDir('mcpgate-cimd-');
    const certs = makeCerts(dir);
    docs = await startDocServer(certs, await freePort());
    const keysDir = path.join(dir, 'keys');
    generateKeys(keysDir);
    const lbPort = await freePort();
    internal = `http://127.0.0.1:${lbPort}`;
    publicHost = `http://localhost:${lbPort}`;
    const ports = [await freePort(), await freePort()];
    for (const [i, port] of ports.entries()) {
      const config = writeConfig(path.join(dir, `mcpgate-${i}.toml`), {
        port,
        keysDir,
        hosts: [
          { issuer: internal, redirect_uris: ['loopback'] },
          { issuer: publicHost, redirect_uris: [CLAUDE_AI_CALLBACK], client_id_hosts: ['127.0.0.1'] },
        ],
        extraLines: [
          '[cimd]',
          'insecure_test_only_allow_loopback = true',
          `insecure_test_only_ca_file = ${JSON.stringify(certs.ca)}`,
        ],
      });
      replicas.push(await startServer(config, { expectPort: port, name: `replica ${i}` }));
    }
    balancer = await startBalancer(lbPort, ports);
  });

  after(async () => {
    await balancer?.close();
    for (const r of replicas) await r.stop();
    await docs?.close();
    removeDir(dir);
  });

  const output = () => replicas.map((r, i) => `--- replica ${i} ---\n${r.output().slice(-3_000)}`).join('\n');

  async function documentFlow({ host, docPath, document, redirectUrl }) {
    const clientId = docs.url(docPath);
    docs.set(docPath, { client_id: clientId, ...document });
    const provider = new DocumentClientProvider({
      redirectUrl,
      clientMetadataUrl: clientId,
      clientMetadata: { client_name: document.client_name, redirect_uris: [redirectUrl] },
    });
    const fetch = recordingFetch();
    const dump = (m) => `${m}\n--- HTTP ---\n${formatLog(fetch.log)}\n${output()}`;
    const t1 = new StreamableHTTPClientTransport(new URL(`${host}/mcp`), { authProvider: provider, fetch });
    let firstError;
    try {
      await withTimeout(new Client({ name: 'cimd-e2e', version: '0' }).connect(t1), STEP_MS, 'first connect');
    } catch (e) {
      firstError = e;
    }
    await t1.close().catch(() => {});
    assert.ok(firstError instanceof UnauthorizedError, dump(`expected the browser step, got ${firstError}`));
    assert.ok(!fetch.log.some((e) => e.url?.includes('/oauth/register')), dump('the SDK registered instead of using its URL'));
    const a = provider.lastAuthorization();
    assert.equal(new URL(a.url).searchParams.get('client_id'), clientId, 'client_id sent to authorize');
    assert.equal(a.status, 302, dump(`authorize answered ${a.status}: ${a.body}`));
    assert.equal(a.redirectedTo, redirectUrl.replace(/\/$/, ''), a.location);
    const code = a.params.code?.[0];
    assert.ok(code, dump(`no code in ${a.location}`));
    await withTimeout(t1.finishAuth(code), STEP_MS, 'finishAuth').catch((e) => {
      throw new Error(dump(`finishAuth failed: ${e}`));
    });
    const tokens = provider.tokens();
    assert.ok(tokens?.access_token, dump('no access token'));
    const { payload } = decodeJwt(tokens.access_token);
    assert.equal(payload.client_id, clientId, JSON.stringify(payload));
    assert.equal(payload.iss, host, JSON.stringify(payload));
    const t2 = new StreamableHTTPClientTransport(new URL(`${host}/mcp`), { authProvider: provider, fetch });
    const client = new Client({ name: 'cimd-e2e', version: '0' });
    try {
      await withTimeout(client.connect(t2), STEP_MS, 'connect with token');
      const w = await withTimeout(client.callTool({ name: 'whoami', arguments: {} }), STEP_MS, 'whoami');
      assert.equal(w.structuredContent?.email, EMAIL, JSON.stringify(w));
      assert.equal(w.structuredContent?.client_id, clientId, JSON.stringify(w));
    } finally {
      await client.close().catch(() => {});
    }
    return { clientId, tokens };
  }

  it('internal host: a Claude Code-like document (portless loopback callback, any port)', { timeout: TEST_MS }, async () => {
    const cbPort = await freePort();
    const r = await documentFlow({
      host: internal,
      docPath: '/oauth/claude-code-client-metadata',
      document: {
        client_name: 'Claude Code',
        redirect_uris: ['http://localhost/callback', 'http://127.0.0.1/callback'],
        grant_types: ['authorization_code', 'refresh_token'],
        response_types: ['code'],
        token_endpoint_auth_method: 'none',
      },
      redirectUrl: `http://localhost:${cbPort}/callback`,
    });
    assert.ok(r.tokens.refresh_token, 'a refresh token (offline_access is advertised)');
    // Both replicas served part of the flow, and each fetched the document once.
    assert.ok(balancer.used.every((n) => n > 0), `balancer: ${balancer.used}`);
    assert.equal(docs.hits('/oauth/claude-code-client-metadata'), 2, 'one fetch per replica, then cached');
  });

  it('public host: a claude.ai-like document', { timeout: TEST_MS }, async () => {
    await documentFlow({
      host: publicHost,
      docPath: '/oauth/mcp-oauth-client-metadata',
      document: {
        client_name: 'Claude',
        redirect_uris: [CLAUDE_AI_CALLBACK],
        grant_types: ['authorization_code', 'refresh_token'],
        token_endpoint_auth_method: 'none',
      },
      redirectUrl: CLAUDE_AI_CALLBACK,
    });
    assert.ok(docs.hits('/oauth/mcp-oauth-client-metadata') >= 1);
  });
});
