// mcp-remote (what Cursor and other stdio-only clients run, README
// › Quick start) against the mcpgate binary: the whole OAuth flow it drives
// itself (discovery, dynamic registration, PKCE, its own loopback callback
// server, the token exchange, refresh storage), then MCP over its stdio.
//
// The browser step: mcp-remote prints the authorization URL (it cannot open
// a browser here); the test GETs it with the X-Forwarded-Email header that
// oauth2-proxy adds after Google sign-in and delivers the 302 to
// mcp-remote's callback server, as the browser would.
//
// Run: node --test tests/node/mcp-remote.test.mjs   (MCPGATE_BIN overrides the binary)

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';

import { EMAIL, browse, freePort, generateKeys, removeDir, startServer, tempDir, withTimeout, writeConfig } from './lib/harness.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const MCP_REMOTE = path.join(here, 'node_modules', '.bin', 'mcp-remote');
const STEP_MS = 20_000;

describe('mcp-remote (stdio bridge) through the whole sign-in', { timeout: 90_000 }, () => {
  let dir;
  let server;
  let issuer;
  let remote;
  let stderr = '';

  before(async () => {
    dir = tempDir();
    const keysDir = path.join(dir, 'keys');
    generateKeys(keysDir);
    const port = await freePort();
    issuer = `http://127.0.0.1:${port}`;
    const config = writeConfig(path.join(dir, 'mcpgate.toml'), {
      port,
      keysDir,
      hosts: [{ issuer, redirect_uris: ['loopback'] }],
    });
    server = await startServer(config, { expectPort: port });
  });

  after(async () => {
    remote?.kill('SIGKILL');
    await server?.stop();
    removeDir(dir);
  });

  it('signs in, then lists and calls whoami over stdio', async () => {
    // Its token store goes to $HOME/.mcp-auth: a fresh one.
    remote = spawn(MCP_REMOTE, [`${issuer}/mcp`], {
      stdio: ['pipe', 'pipe', 'pipe'],
      env: { ...process.env, HOME: dir, BROWSER: 'false' },
    });
    remote.stderr.setEncoding('utf8');
    remote.stdout.setEncoding('utf8');
    const authUrl = await withTimeout(
      new Promise((resolve, reject) => {
        remote.stderr.on('data', (chunk) => {
          stderr += chunk;
          const m = stderr.match(/Please authorize this client by visiting:\s*(\S+)/);
          if (m) resolve(m[1]);
        });
        remote.on('exit', (code) => reject(new Error(`mcp-remote exited ${code}:\n${stderr}`)));
      }),
      STEP_MS,
      'mcp-remote printing the authorization URL',
    );
    const url = new URL(authUrl);
    assert.equal(`${url.origin}${url.pathname}`, `${issuer}/oauth/authorize`);
    assert.equal(url.searchParams.get('code_challenge_method'), 'S256');
    assert.equal(url.searchParams.get('resource'), `${issuer}/mcp`);

    // The browser: signed in by the proxy, redirected to mcp-remote's
    // loopback callback with the code.
    const answer = await browse(authUrl, { email: EMAIL });
    assert.equal(answer.status, 302, `authorize answered ${answer.status}: ${answer.body}`);
    const callback = new URL(answer.location);
    assert.match(callback.hostname, /^(localhost|127\.0\.0\.1)$/);
    assert.ok(callback.searchParams.get('code'), answer.location);
    assert.equal(callback.searchParams.get('iss'), issuer, 'RFC 9207 iss');
    const delivered = await fetch(callback, { signal: AbortSignal.timeout(STEP_MS) });
    assert.equal(delivered.status, 200, await delivered.text());

    // MCP over its stdio: newline-delimited JSON-RPC.
    const replies = new Map();
    let buffered = '';
    const waiters = new Map();
    remote.stdout.on('data', (chunk) => {
      buffered += chunk;
      let nl;
      while ((nl = buffered.indexOf('\n')) >= 0) {
        const line = buffered.slice(0, nl).trim();
        buffered = buffered.slice(nl + 1);
        if (!line) continue;
        const msg = JSON.parse(line);
        if (msg.id !== undefined) {
          replies.set(msg.id, msg);
          waiters.get(msg.id)?.(msg);
        }
      }
    });
    const call = (id, method, params) =>
      withTimeout(
        new Promise((resolve) => {
          waiters.set(id, resolve);
          remote.stdin.write(`${JSON.stringify({ jsonrpc: '2.0', id, method, params })}\n`);
          if (replies.has(id)) resolve(replies.get(id));
        }),
        STEP_MS,
        `${method} through mcp-remote (stderr so far:\n${stderr})`,
      );
    const init = await call(1, 'initialize', {
      protocolVersion: '2025-06-18',
      capabilities: {},
      clientInfo: { name: 'mcpgate-mcp-remote-test', version: '0.0.0' },
    });
    assert.ok(init.result?.serverInfo, JSON.stringify(init));
    remote.stdin.write(`${JSON.stringify({ jsonrpc: '2.0', method: 'notifications/initialized' })}\n`);
    const tools = await call(2, 'tools/list', {});
    assert.ok(tools.result.tools.some((t) => t.name === 'whoami'), JSON.stringify(tools));
    const whoami = await call(3, 'tools/call', { name: 'whoami', arguments: {} });
    assert.equal(whoami.result?.isError ?? false, false, JSON.stringify(whoami));
    assert.match(JSON.stringify(whoami.result), new RegExp(EMAIL.replace('.', '\\.')));
    assert.match(server.output(), /access token issued/);
  });
});
