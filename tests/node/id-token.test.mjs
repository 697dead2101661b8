// The Google ID token oauth2-proxy injects, checked by mcpgate on
// /oauth/authorize ([identity] id_token_*), against a REAL OpenID provider:
// oidc-provider on loopback stands in for Google. Its real authorization-code
// flow (devInteractions login form, consent, token endpoint) is scripted with
// fetch and a cookie jar, for the client that plays oauth2-proxy, and yields
// genuine RS256 ID tokens signed by a key of its jwks_uri. mcpgate is then
// configured with that issuer, audience and jwks_uri (http on loopback) and
// the browser behind oauth2-proxy is played as in e2e.test.mjs, with the
// ID-token header added.
//
// Run: bash tests/node/run.sh id-token.test.mjs

import assert from 'node:assert/strict';
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import http from 'node:http';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';

import Provider from 'oidc-provider';

import {
  authorizationUrl,
  decodeJwt,
  freePort,
  generateKeys,
  pkce,
  registerClient,
  removeDir,
  startServer,
  tempDir,
  writeConfig,
} from './lib/harness.mjs';

const HEADER = 'X-Forwarded-Id-Token';
const AUDIENCE = 'oauth2-proxy.apps.example'; // the proxy's client id at the provider
const OTHER_AUDIENCE = 'another-app.apps.example';
const PROXY_CALLBACK = 'https://proxy.example.com/oauth2/callback';
const MCP_CALLBACK = 'http://127.0.0.1:33418/callback';
const SHORT_TTL_S = 1; // erin's ID tokens; mcpgate allows 60 s of clock skew
const LEEWAY_S = 60;
const STEP_MS = 15_000;

// The accounts the provider signs in (devInteractions: any password).
const ACCOUNTS = {
  alice: { email: 'alice@example.com', email_verified: true, hd: 'example.com' },
  carol: { email: 'carol@example.com', email_verified: true, hd: 'other.com' }, // Workspace other.com
  dave: { email: 'dave@example.com', email_verified: false, hd: 'example.com' },
  erin: { email: 'erin@example.com', email_verified: true, hd: 'example.com' }, // short-lived ID tokens
};

/** Starts oidc-provider on a loopback port; returns {issuer, jwksUri, close()}. */
async function startProvider() {
  const port = await freePort();
  const issuer = `http://127.0.0.1:${port}`;
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const jwk = { ...privateKey.export({ format: 'jwk' }), kid: 'op-rsa-1', alg: 'RS256', use: 'sig' };
  const client = (client_id) => ({
    client_id,
    client_secret: `secret-of-${client_id}-0123456789abcdef`,
    redirect_uris: [PROXY_CALLBACK],
    grant_types: ['authorization_code'],
    response_types: ['code'],
    token_endpoint_auth_method: 'client_secret_basic',
    id_token_signed_response_alg: 'RS256',
  });
  const provider = new Provider(issuer, {
    clients: [client(AUDIENCE), client(OTHER_AUDIENCE)],
    jwks: { keys: [jwk] },
    cookies: { keys: [randomBytes(32).toString('hex')] },
    claims: { openid: ['sub'], email: ['email', 'email_verified', 'hd'] },
    // Scope claims in the ID token itself, as Google puts them.
    conformIdTokenClaims: false,
    async findAccount(ctx, id) {
      const account = ACCOUNTS[id];
      if (!account) return undefined;
      return { accountId: id, claims: async () => ({ sub: id, ...account }) };
    },
    features: { devInteractions: { enabled: true } },
    pkce: { required: () => false },
    ttl: {
      IdToken: (ctx, token) => (token.available?.sub === 'erin' ? SHORT_TTL_S : 600),
      AccessToken: 600,
      AuthorizationCode: 60,
      Grant: 600,
      Interaction: 600,
      Session: 600,
    },
  });
  const server = http.createServer(provider.callback());
  await new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', resolve);
  });
  const discovery = await (await fetch(`${issuer}/.well-known/openid-configuration`, { signal: AbortSignal.timeout(STEP_MS) })).json();
  assert.equal(discovery.issuer, issuer);
  return {
    issuer,
    jwksUri: discovery.jwks_uri,
    tokenEndpoint: discovery.token_endpoint,
    authorizationEndpoint: discovery.authorization_endpoint,
    secretOf: (id) => client(id).client_secret,
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections?.();
        server.close(() => resolve());
      }),
  };
}

/**
 * One person signing in at the provider for `clientId` (what oauth2-proxy
 * does with Google): authorization request, login form, consent form, code,
 * token endpoint. Returns the ID token.
 */
async function signInAtProvider(op, login, clientId = AUDIENCE) {
  const jar = new Map();
  const trail = [];
  const send = async (url, init = {}) => {
    const headers = { ...(init.headers ?? {}) };
    if (jar.size) headers.cookie = [...jar].map(([k, v]) => `${k}=${v}`).join('; ');
    const res = await fetch(url, { ...init, headers, redirect: 'manual', signal: AbortSignal.timeout(STEP_MS) });
    for (const c of res.headers.getSetCookie()) {
      const [pair] = c.split(';');
      const i = pair.indexOf('=');
      const name = pair.slice(0, i).trim();
      const value = pair.slice(i + 1).trim();
      if (/expires=Thu, 01 Jan 1970/i.test(c) || value === '') jar.delete(name);
      else jar.set(name, value);
    }
    trail.push(`${init.method ?? 'GET'} ${url} -> ${res.status}`);
    return res;
  };
  const auth = new URL(op.authorizationEndpoint);
  auth.search = new URLSearchParams({
    client_id: clientId,
    response_type: 'code',
    scope: 'openid email',
    redirect_uri: PROXY_CALLBACK,
    state: randomBytes(8).toString('hex'),
    nonce: randomBytes(8).toString('hex'),
  }).toString();
  let url = auth.href;
  let code;
  for (let step = 0; step < 12 && !code; step++) {
    const res = await send(url);
    if (res.status === 303 || res.status === 302) {
      const next = new URL(res.headers.get('location'), url);
      if (next.href.startsWith(PROXY_CALLBACK)) {
        code = next.searchParams.get('code');
        assert.ok(code, `no code in ${next.href}\n${trail.join('\n')}`);
        break;
      }
      url = next.href;
      continue;
    }
    const html = await res.text();
    assert.equal(res.status, 200, `${url}: ${html.slice(0, 500)}\n${trail.join('\n')}`);
    const action = html.match(/<form[^>]*action="([^"]+)"/)?.[1];
    const prompt = html.match(/name="prompt" value="(\w+)"/)?.[1];
    assert.ok(action && prompt, `no interaction form at ${url}: ${html.slice(0, 500)}`);
    const form = prompt === 'login' ? { prompt, login, password: 'any' } : { prompt };
    const posted = await send(new URL(action.replace(/&amp;/g, '&'), url).href, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams(form).toString(),
    });
    assert.ok([302, 303].includes(posted.status), `POST ${action} -> ${posted.status}\n${trail.join('\n')}`);
    url = new URL(posted.headers.get('location'), url).href;
  }
  assert.ok(code, `the provider flow did not end at the callback\n${trail.join('\n')}`);
  const basic = Buffer.from(`${encodeURIComponent(clientId)}:${encodeURIComponent(op.secretOf(clientId))}`).toString('base64');
  const res = await fetch(op.tokenEndpoint, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: `Basic ${basic}` },
    body: new URLSearchParams({ grant_type: 'authorization_code', code, redirect_uri: PROXY_CALLBACK }).toString(),
    signal: AbortSignal.timeout(STEP_MS),
  });
  const body = await res.json();
  assert.equal(res.status, 200, `token endpoint: ${JSON.stringify(body)}`);
  assert.ok(body.id_token, `no id_token: ${Object.keys(body)}`);
  return body.id_token;
}

/** Answers 503 until `ready`, then serves `jwksUri`'s document: a JWKS host that is down at first. */
async function flakyJwksServer(jwksUri) {
  const port = await freePort();
  const state = { ready: false, hits: 0 };
  const server = http.createServer(async (req, res) => {
    state.hits++;
    if (!state.ready) {
      res.writeHead(503).end('down');
      return;
    }
    const upstream = await fetch(jwksUri);
    res.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'public, max-age=600' });
    res.end(await upstream.text());
  });
  await new Promise((resolve) => server.listen(port, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${port}/certs`,
    state,
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections?.();
        server.close(() => resolve());
      }),
  };
}

describe('mcpgate verifies the ID token the proxy injects (oidc-provider on loopback)', { timeout: 240_000 }, () => {
  let op;
  let dir;
  const servers = [];
  const tokens = {};
  let expiredAt;

  /** Starts mcpgate checking ID tokens from `op`; returns {server, issuer, clientId}. */
  async function startMcpgate(name, jwks = op.jwksUri) {
    const port = await freePort();
    const issuer = `http://127.0.0.1:${port}`;
    const keysDir = path.join(dir, 'keys');
    const cfg = writeConfig(path.join(dir, `${name}.toml`), {
      port,
      keysDir,
      hosts: [{ issuer, redirect_uris: ['loopback'] }],
      identityLines: [
        `id_token_header = ${JSON.stringify(HEADER)}`,
        `id_token_audience = ${JSON.stringify(AUDIENCE)}`,
        `id_token_issuer = ${JSON.stringify(op.issuer)}`,
        `id_token_jwks = ${JSON.stringify(jwks)}`,
      ],
    });
    const server = await startServer(cfg, { expectPort: port, name });
    servers.push(server);
    const reg = await registerClient(issuer, MCP_CALLBACK);
    return { server, issuer, clientId: reg.client_id };
  }

  /** GET /oauth/authorize as the browser behind oauth2-proxy. */
  async function authorize(m, { email = 'alice@example.com', idToken } = {}) {
    const { challenge } = pkce();
    const url = authorizationUrl(m.issuer, { clientId: m.clientId, redirectUri: MCP_CALLBACK, challenge });
    const headers = {};
    if (email) headers['X-Forwarded-Email'] = email;
    if (idToken) headers[HEADER] = idToken;
    const res = await fetch(url, { headers, redirect: 'manual', signal: AbortSignal.timeout(STEP_MS) });
    const text = await res.text();
    let body;
    try {
      body = JSON.parse(text);
    } catch {
      body = { text };
    }
    return { status: res.status, location: res.headers.get('location'), body };
  }

  const explain = (m, r) => `answer: ${r.status} ${JSON.stringify(r.body)}\n--- server output (tail) ---\n${m.server.output().slice(-3_000)}`;

  before(async () => {
    dir = tempDir('mcpgate-id-token-');
    generateKeys(path.join(dir, 'keys'));
    op = await startProvider();
    // The short-lived one first: the wait for it to expire overlaps the rest
    // (the expiry case runs last).
    tokens.expired = await signInAtProvider(op, 'erin');
    expiredAt = decodeJwt(tokens.expired).payload.exp;
    tokens.good = await signInAtProvider(op, 'alice');
    tokens.otherHd = await signInAtProvider(op, 'carol');
    tokens.unverified = await signInAtProvider(op, 'dave');
    tokens.otherAudience = await signInAtProvider(op, 'alice', OTHER_AUDIENCE);
  });

  after(async () => {
    for (const s of servers) await s.stop();
    await op?.close();
    removeDir(dir);
  });

  it('the provider issued genuine RS256 ID tokens with the claims under test', () => {
    const { header, payload } = decodeJwt(tokens.good);
    assert.equal(header.alg, 'RS256');
    assert.equal(header.kid, 'op-rsa-1');
    assert.equal(payload.iss, op.issuer);
    assert.equal(payload.aud, AUDIENCE);
    assert.equal(payload.email, 'alice@example.com');
    assert.equal(payload.email_verified, true);
    assert.equal(payload.hd, 'example.com');
    assert.equal(decodeJwt(tokens.otherHd).payload.hd, 'other.com');
    assert.equal(decodeJwt(tokens.unverified).payload.email_verified, false);
    assert.equal(decodeJwt(tokens.otherAudience).payload.aud, OTHER_AUDIENCE);
    assert.equal(expiredAt - decodeJwt(tokens.expired).payload.iat, SHORT_TTL_S);
  });

  it('a JWKS host that is down at start: mcpgate starts, refuses sign-ins (fail closed), then accepts once the JWKS loads', { timeout: 90_000 }, async () => {
    const flaky = await flakyJwksServer(op.jwksUri);
    try {
      const m = await startMcpgate('mcpgate-flaky', flaky.url);
      assert.ok(flaky.state.hits >= 1, 'mcpgate tried the JWKS at start');
      const refused = await authorize(m, { idToken: tokens.good });
      assert.equal(refused.status, 503, explain(m, refused));
      assert.equal(refused.body.error, 'temporarily_unavailable');
      assert.match(refused.body.error_description, /keys are not loaded/);
      assert.match(m.server.output(), /JWKS not loaded/);
      flaky.state.ready = true;
      const deadline = Date.now() + 60_000;
      let r;
      do {
        await new Promise((resolve) => setTimeout(resolve, 500));
        r = await authorize(m, { idToken: tokens.good });
      } while (r.status !== 302 && Date.now() < deadline);
      assert.equal(r.status, 302, explain(m, r));
    } finally {
      await flaky.close();
    }
  });

  describe('with the JWKS reachable', () => {
    let m;
    before(async () => {
      m = await startMcpgate('mcpgate');
    });

    it('a good ID token with the matching email gets a code', async () => {
      const r = await authorize(m, { idToken: tokens.good });
      assert.equal(r.status, 302, explain(m, r));
      const loc = new URL(r.location);
      assert.equal(`${loc.origin}${loc.pathname}`, MCP_CALLBACK);
      assert.ok(loc.searchParams.get('code'), r.location);
      // The email header's case does not matter.
      const r2 = await authorize(m, { email: 'Alice@Example.COM', idToken: tokens.good });
      assert.equal(r2.status, 302, explain(m, r2));
    });

    it('a Workspace domain (hd) that is not allowed is refused with 403 access_denied', async () => {
      const r = await authorize(m, { email: 'carol@example.com', idToken: tokens.otherHd });
      assert.equal(r.status, 403, explain(m, r));
      assert.equal(r.body.error, 'access_denied');
      assert.match(r.body.error_description, /other\.com/);
    });

    it('an unverified email is refused', async () => {
      const r = await authorize(m, { email: 'dave@example.com', idToken: tokens.unverified });
      assert.equal(r.status, 401, explain(m, r));
      assert.equal(r.body.error, 'login_required');
      assert.match(r.body.error_description, /not verified/);
    });

    it('no ID token header: 401 login_required', async () => {
      const r = await authorize(m, {});
      assert.equal(r.status, 401, explain(m, r));
      assert.equal(r.body.error, 'login_required');
      assert.match(r.body.error_description, new RegExp(HEADER, 'i'));
    });

    it('an ID token issued to another client (audience): 401', async () => {
      const r = await authorize(m, { idToken: tokens.otherAudience });
      assert.equal(r.status, 401, explain(m, r));
      assert.equal(r.body.error, 'login_required');
      assert.match(r.body.error_description, /audience/);
    });

    it('an ID token for someone else than the email header: 401', async () => {
      const r = await authorize(m, { email: 'bob@example.com', idToken: tokens.good });
      assert.equal(r.status, 401, explain(m, r));
      assert.match(r.body.error_description, /not the signed-in email/);
    });

    it('a tampered ID token (payload changed, signature kept): 401', async () => {
      const [h, p, s] = tokens.good.split('.');
      const claims = JSON.parse(Buffer.from(p, 'base64url').toString());
      claims.email = 'mallory@example.com';
      const forged = `${h}.${Buffer.from(JSON.stringify(claims)).toString('base64url')}.${s}`;
      const r = await authorize(m, { email: 'mallory@example.com', idToken: forged });
      assert.equal(r.status, 401, explain(m, r));
      assert.match(r.body.error_description, /signature/);
    });

    it('the ID token never appears in the server log', () => {
      const out = m.server.output();
      for (const t of Object.values(tokens)) {
        assert.ok(!out.includes(t.split('.')[2]), 'a token signature was logged');
      }
    });

    it('an expired ID token (provider IdToken TTL 1 s, past the 60 s leeway): 401', { timeout: 120_000 }, async () => {
      const waitMs = (expiredAt + LEEWAY_S + 2) * 1000 - Date.now();
      if (waitMs > 0) await new Promise((resolve) => setTimeout(resolve, waitMs));
      const r = await authorize(m, { email: 'erin@example.com', idToken: tokens.expired });
      assert.equal(r.status, 401, explain(m, r));
      assert.equal(r.body.error, 'login_required');
      assert.match(r.body.error_description, /expired/);
      // The same person with a fresh token still gets in.
      const fresh = await signInAtProvider(op, 'erin');
      const ok = await authorize(m, { email: 'erin@example.com', idToken: fresh });
      assert.equal(ok.status, 302, explain(m, ok));
    });
  });

});
