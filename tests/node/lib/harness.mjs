// Shared helpers for the real-client tests: start mcpgate, play the browser
// behind oauth2-proxy, record HTTP traffic so a failure shows what the server
// answered.
//
// Everything here talks to loopback only.

import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync, rmSync, existsSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import { createHash, randomBytes } from 'node:crypto';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));

/** The binary under test: $MCPGATE_BIN, else target/debug/mcpgate of this repository. */
export const MCPGATE_BIN = process.env.MCPGATE_BIN
  ? path.resolve(process.env.MCPGATE_BIN)
  : path.resolve(here, '../../../target/debug/mcpgate');

/** The email oauth2-proxy would put in X-Forwarded-Email for the signed-in person. */
export const EMAIL = 'alice@example.com';

/** A port that was free a moment ago (bind 0, read it, close). */
export function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

export function tempDir(prefix = 'mcpgate-node-') {
  return mkdtempSync(path.join(os.tmpdir(), prefix));
}

export function removeDir(dir) {
  if (dir && existsSync(dir)) rmSync(dir, { recursive: true, force: true });
}

/**
 * The environment for mcpgate: without any MCPGATE_* variable (mcpgate reads
 * MCPGATE_* as config overrides and refuses unknown keys, MCPGATE_BIN included),
 * so that a test's server runs on exactly the config the test wrote.
 */
export function serverEnv(extra = {}) {
  const env = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('MCPGATE_')) env[k] = v;
  return { ...env, ...extra };
}

function assertBinary() {
  if (!existsSync(MCPGATE_BIN)) {
    throw new Error(`mcpgate binary not found at ${MCPGATE_BIN} (run cargo build, or set MCPGATE_BIN)`);
  }
}

export { tomlString };

/** `mcpgate keys generate --dir DIR`, bounded to 30 s. */
export function generateKeys(dir) {
  assertBinary();
  const r = spawnSync(MCPGATE_BIN, ['keys', 'generate', '--dir', dir], {
    encoding: 'utf8',
    timeout: 30_000,
    env: serverEnv(),
  });
  if (r.error) throw new Error(`mcpgate keys generate: ${r.error.message}`);
  if (r.status !== 0) {
    throw new Error(`mcpgate keys generate exited ${r.status}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`);
  }
  return r;
}

/** `mcpgate <args>` with a 30 s bound; returns {status, stdout, stderr}. */
export function runMcpgate(args) {
  assertBinary();
  const r = spawnSync(MCPGATE_BIN, args, { encoding: 'utf8', timeout: 30_000, env: serverEnv() });
  if (r.error) throw new Error(`mcpgate ${args.join(' ')}: ${r.error.message}`);
  return r;
}

const tomlString = (s) => JSON.stringify(String(s)); // JSON string escapes are valid TOML basic strings

/**
 * Writes an mcpgate config. hosts: [{issuer, redirect_uris}]; identityLines: extra
 * TOML lines for the [identity] table.
 * Only keys that the operator interface documents are written (unknown keys are errors).
 */
export function writeConfig(file, { port, hosts, keysDir, allowedDomains = ['example.com'], identityLines = [], extraLines = [] }) {
  const lines = [`listen = ${tomlString(`127.0.0.1:${port}`)}`, ''];
  for (const h of hosts) {
    lines.push('[[hosts]]');
    lines.push(`issuer = ${tomlString(h.issuer)}`);
    lines.push(`redirect_uris = [${h.redirect_uris.map(tomlString).join(', ')}]`);
    if (h.client_id_hosts) lines.push(`client_id_hosts = [${h.client_id_hosts.map(tomlString).join(', ')}]`);
    lines.push('');
  }
  lines.push('[identity]');
  lines.push('source = "proxy"');
  lines.push(`allowed_domains = [${allowedDomains.map(tomlString).join(', ')}]`);
  lines.push('trusted_proxies = ["127.0.0.1/32", "::1/128"]');
  // The SDK flow has no person to click Allow; consent is tested in Rust.
  lines.push('consent = "never"');
  // identityLines: more `[identity]` keys as TOML lines, e.g. `id_token_header = "X-Forwarded-Id-Token"`.
  lines.push(...identityLines);
  lines.push('');
  lines.push('[keys]');
  lines.push(`dir = ${tomlString(keysDir)}`);
  lines.push('');
  // extraLines: more tables as TOML lines, e.g. a `[cimd]` block or
  // `[[upstreams]]` entries.
  lines.push(...extraLines);
  lines.push('');
  writeFileSync(file, lines.join('\n'));
  return file;
}

/**
 * `mcpgate serve --config FILE`; resolves once stdout says
 * `mcpgate listening on 127.0.0.1:PORT` (at most `timeoutMs`).
 * Returns {port, proc, output(), stop()}.
 */
export function startServer(configFile, { expectPort, timeoutMs = 20_000, name = 'mcpgate' } = {}) {
  assertBinary();
  const proc = spawn(MCPGATE_BIN, ['serve', '--config', configFile], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: serverEnv({ RUST_LOG: process.env.RUST_LOG ?? 'info', NO_COLOR: '1' }),
  });
  let out = '';
  let exited = null;
  // Never leave a server behind, even when the test process dies early.
  const killOnExit = () => {
    if (!exited) proc.kill('SIGKILL');
  };
  process.once('exit', killOnExit);
  proc.once('exit', () => process.removeListener('exit', killOnExit));
  const append = (prefix) => (chunk) => {
    out += chunk
      .toString()
      .split('\n')
      .filter((l) => l.length)
      .map((l) => `[${name} ${prefix}] ${l}\n`)
      .join('');
    if (out.length > 200_000) out = out.slice(-200_000);
  };
  proc.stderr.on('data', append('err'));

  const server = {
    proc,
    port: undefined,
    output: () => out,
    async stop() {
      if (exited) return exited;
      const done = new Promise((resolve) => proc.once('exit', (code, signal) => resolve({ code, signal })));
      proc.kill('SIGTERM');
      const t = setTimeout(() => proc.kill('SIGKILL'), 5_000);
      const r = await done;
      clearTimeout(t);
      return r;
    },
  };

  return new Promise((resolve, reject) => {
    let buffered = '';
    const timer = setTimeout(() => {
      proc.kill('SIGKILL');
      reject(new Error(`${name} did not print its listening line within ${timeoutMs} ms\n${out}`));
    }, timeoutMs);
    proc.stdout.on('data', (chunk) => {
      append('out')(chunk);
      if (server.port !== undefined) return;
      buffered += chunk.toString();
      const m = buffered.match(/^mcpgate listening on 127\.0\.0\.1:(\d+)\s*$/m);
      if (m) {
        server.port = Number(m[1]);
        clearTimeout(timer);
        if (expectPort !== undefined && server.port !== expectPort) {
          reject(new Error(`${name} listens on ${server.port}, expected ${expectPort}`));
        } else {
          resolve(server);
        }
      }
    });
    proc.once('exit', (code, signal) => {
      exited = { code, signal };
      if (server.port === undefined) {
        clearTimeout(timer);
        reject(new Error(`${name} exited (code ${code}, signal ${signal}) before listening\n${out}`));
      }
    });
    proc.once('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
  });
}

/**
 * The browser behind oauth2-proxy: GET the authorization URL with the
 * identity header oauth2-proxy adds, do not follow the redirect, return
 * what came back.
 */
export async function browse(url, { email = EMAIL, timeoutMs = 10_000 } = {}) {
  const headers = {};
  if (email) headers['X-Forwarded-Email'] = email;
  const res = await fetch(url, { redirect: 'manual', headers, signal: AbortSignal.timeout(timeoutMs) });
  const body = await res.text();
  return { status: res.status, location: res.headers.get('location'), headers: res.headers, body };
}

/** Decodes a JWS's header and payload without checking anything (for assertions and reports). */
export function decodeJwt(jwt) {
  const [h, p] = String(jwt).split('.');
  const dec = (s) => JSON.parse(Buffer.from(s, 'base64url').toString('utf8'));
  return { header: dec(h), payload: dec(p) };
}

const SECRET_FIELDS = /("(?:access_token|refresh_token|code|code_verifier|client_secret)"\s*:\s*")([^"]{8})[^"]*"/g;
const redact = (s) => String(s).replace(SECRET_FIELDS, '$1$2…"');

/**
 * A fetch that records every exchange (method, URL, status, and the body of
 * any non-2xx answer), bounded by a per-request timeout. `route(url, init)`
 * may return {port, host} to send the request to another port while keeping
 * the Host header of the original URL (a load balancer in front of replicas).
 */
export function recordingFetch({ log = [], route, timeoutMs = 15_000 } = {}) {
  const f = async (input, init = {}) => {
    const url = new URL(typeof input === 'string' || input instanceof URL ? String(input) : input.url);
    const method = (init.method ?? 'GET').toUpperCase();
    const entry = { method, url: url.href };
    if (url.pathname.endsWith('/oauth/register') && typeof init.body === 'string') entry.request = init.body; // no secrets in DCR requests
    log.push(entry);
    const target = route?.(url, init);
    let res;
    try {
      if (target) {
        entry.routedTo = `127.0.0.1:${target.port}`;
        res = await forwardKeepingHost(url, init, target.port, timeoutMs);
      } else {
        const signal = init.signal ? AbortSignal.any([init.signal, AbortSignal.timeout(timeoutMs)]) : AbortSignal.timeout(timeoutMs);
        res = await fetch(url, { ...init, signal });
      }
    } catch (err) {
      entry.error = String(err?.cause?.code ?? err?.message ?? err);
      throw err;
    }
    entry.status = res.status;
    const www = res.headers.get('www-authenticate');
    if (www) entry.wwwAuthenticate = www;
    if (res.status >= 300) {
      try {
        entry.body = redact((await res.clone().text()).slice(0, 2_000));
      } catch {
        /* streaming body */
      }
      const loc = res.headers.get('location');
      if (loc) entry.location = loc;
    }
    return res;
  };
  f.log = log;
  return f;
}

/** Sends `init` to 127.0.0.1:port with the Host header of `url` (fetch cannot set Host). */
function forwardKeepingHost(url, init, port, timeoutMs) {
  const headers = {};
  new Headers(init.headers ?? {}).forEach((v, k) => {
    headers[k] = v;
  });
  headers.host = url.host;
  let body = init.body;
  if (body !== undefined && body !== null && typeof body !== 'string' && !(body instanceof Uint8Array)) {
    body = String(body); // URLSearchParams
    if (!headers['content-type']) headers['content-type'] = 'application/x-www-form-urlencoded;charset=UTF-8';
  }
  if (typeof body === 'string') headers['content-length'] = String(Buffer.byteLength(body));
  return new Promise((resolve, reject) => {
    const req = http.request(
      { host: '127.0.0.1', port, method: init.method ?? 'GET', path: url.pathname + url.search, headers, timeout: timeoutMs },
      (res) => {
        const chunks = [];
        res.on('data', (c) => chunks.push(c));
        res.on('end', () => {
          const h = new Headers();
          for (const [k, v] of Object.entries(res.headers)) {
            for (const one of [].concat(v)) h.append(k, one);
          }
          const status = res.statusCode;
          const nullBody = status === 204 || status === 304;
          resolve(new Response(nullBody ? null : Buffer.concat(chunks), { status, headers: h }));
        });
        res.on('error', reject);
      },
    );
    req.on('timeout', () => req.destroy(new Error(`timeout after ${timeoutMs} ms`)));
    req.on('error', reject);
    if (body !== undefined && body !== null) req.write(body);
    req.end();
  });
}

/** Formats a traffic log for an assertion message. */
export function formatLog(log) {
  return log
    .map((e) => {
      let s = `  ${e.method} ${e.url}${e.routedTo ? ` (sent to ${e.routedTo})` : ''} -> ${e.status ?? e.error}`;
      if (e.request) s += `\n      request: ${e.request}`;
      if (e.location) s += `\n      Location: ${e.location}`;
      if (e.wwwAuthenticate) s += `\n      WWW-Authenticate: ${e.wwwAuthenticate}`;
      if (e.body) s += `\n      body: ${e.body}`;
      return s;
    })
    .join('\n');
}

/** Rejects if `promise` takes longer than `ms`. */
export function withTimeout(promise, ms, what) {
  let t;
  return Promise.race([
    promise,
    new Promise((_, reject) => {
      t = setTimeout(() => reject(new Error(`${what}: timed out after ${ms} ms`)), ms);
    }),
  ]).finally(() => clearTimeout(t));
}

/** PKCE S256 pair. */
export function pkce() {
  const verifier = randomBytes(32).toString('base64url');
  const challenge = createHash('sha256').update(verifier).digest('base64url');
  return { verifier, challenge };
}

/** Raw RFC 7591 registration of a public client; throws with the server's answer unless 201. */
export async function registerClient(issuer, redirectUri, extra = {}) {
  const res = await fetch(`${issuer}/oauth/register`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({
      client_name: 'mcpgate node raw client',
      redirect_uris: [redirectUri],
      token_endpoint_auth_method: 'none',
      grant_types: ['authorization_code', 'refresh_token'],
      response_types: ['code'],
      ...extra,
    }),
    signal: AbortSignal.timeout(10_000),
  });
  const body = await res.text();
  if (res.status !== 201) throw new Error(`POST ${issuer}/oauth/register -> ${res.status}: ${body}`);
  return JSON.parse(body);
}

/** An authorization URL for a raw client (PKCE S256, state, resource = issuer/mcp). */
export function authorizationUrl(issuer, { clientId, redirectUri, challenge, state = randomBytes(8).toString('hex') }) {
  const u = new URL(`${issuer}/oauth/authorize`);
  u.search = new URLSearchParams({
    response_type: 'code',
    client_id: clientId,
    redirect_uri: redirectUri,
    code_challenge: challenge,
    code_challenge_method: 'S256',
    state,
    resource: `${issuer}/mcp`,
  }).toString();
  return u.href;
}

/** Raw POST /oauth/token (form); returns {status, headers, body (parsed when JSON), text}. */
export async function tokenRequest(issuer, form, headers = {}) {
  const res = await fetch(`${issuer}/oauth/token`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', ...headers },
    body: new URLSearchParams(form),
    signal: AbortSignal.timeout(10_000),
  });
  const text = await res.text();
  let body;
  try {
    body = JSON.parse(text);
  } catch {
    body = undefined;
  }
  return { status: res.status, headers: res.headers, body, text: redact(text) };
}

/**
 * @modelcontextprotocol/server-everything (the SDK's reference server) in
 * Streamable HTTP mode on `port`; resolves once it says it listens.
 * Returns {proc, output(), stop()}.
 */
export function startEverything(port) {
  const script = path.join(here, '..', 'node_modules/@modelcontextprotocol/server-everything/dist/index.js');
  const proc = spawn(process.execPath, [script, 'streamableHttp'], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...serverEnv(), PORT: String(port) },
  });
  let out = '';
  const killOnExit = () => proc.kill('SIGKILL');
  process.once('exit', killOnExit);
  proc.once('exit', () => process.removeListener('exit', killOnExit));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`server-everything did not start\n${out}`)), 20_000);
    const watch = (chunk) => {
      out += chunk.toString();
      if (out.length > 200_000) out = out.slice(-200_000);
      if (/listening on port/i.test(out)) {
        clearTimeout(timer);
        resolve({ proc, output: () => out, stop: () => proc.kill('SIGTERM') });
      }
    };
    proc.stdout.on('data', watch);
    proc.stderr.on('data', watch);
    proc.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`server-everything exited ${code}\n${out}`));
    });
  });
}
