// An in-memory OAuthClientProvider for the official MCP TypeScript SDK whose
// "browser" is an HTTP GET carrying the identity header that oauth2-proxy adds
// after Google sign-in.

import { randomBytes } from 'node:crypto';
import { browse, EMAIL } from './harness.mjs';

export class HeadlessBrowserProvider {
  /**
   * @param {object} o
   * @param {string} o.redirectUrl        the client's callback (never listened on: the browser stops at the 302)
   * @param {object} o.clientMetadata     RFC 7591 metadata sent to /oauth/register
   * @param {string} [o.email]            identity oauth2-proxy vouches for
   */
  constructor({ redirectUrl, clientMetadata, email = EMAIL }) {
    this._redirectUrl = redirectUrl;
    this._clientMetadata = clientMetadata;
    this._email = email;
    this._clientInformation = undefined;
    this._tokens = undefined;
    this._codeVerifier = undefined;
    this._discovery = undefined;
    this._state = undefined;
    /** every authorization URL the SDK sent the browser to, and what the server answered */
    this.authorizations = [];
  }

  get redirectUrl() {
    return this._redirectUrl;
  }

  get clientMetadata() {
    return this._clientMetadata;
  }

  state() {
    this._state = randomBytes(16).toString('base64url');
    return this._state;
  }

  clientInformation() {
    return this._clientInformation;
  }

  saveClientInformation(info) {
    // stored unchanged (the SDK stamps the issuer on it)
    this._clientInformation = info;
  }

  tokens() {
    return this._tokens;
  }

  saveTokens(tokens) {
    this._tokens = tokens;
  }

  saveCodeVerifier(v) {
    this._codeVerifier = v;
  }

  codeVerifier() {
    if (!this._codeVerifier) throw new Error('no code verifier saved');
    return this._codeVerifier;
  }

  saveDiscoveryState(s) {
    this._discovery = s;
  }

  discoveryState() {
    return this._discovery;
  }

  invalidateCredentials(scope) {
    if (scope === 'all' || scope === 'client') this._clientInformation = undefined;
    if (scope === 'all' || scope === 'tokens') this._tokens = undefined;
    if (scope === 'all' || scope === 'verifier') this._codeVerifier = undefined;
    if (scope === 'all' || scope === 'discovery') this._discovery = undefined;
  }

  /**
   * The browser: GET the authorization URL through "oauth2-proxy" (i.e. with
   * its identity header) and stop at the redirect. The result (status,
   * Location, parsed code/state/iss) is kept for the test to assert on.
   */
  async redirectToAuthorization(authorizationUrl) {
    const url = new URL(authorizationUrl);
    const record = { url: url.href, sentState: url.searchParams.get('state') ?? undefined };
    this.authorizations.push(record);
    const res = await browse(url.href, { email: this._email });
    record.status = res.status;
    record.location = res.location;
    record.body = res.status === 302 ? undefined : res.body.slice(0, 2_000);
    if (res.location) {
      const loc = new URL(res.location, url);
      record.redirectedTo = `${loc.origin}${loc.pathname}`;
      record.params = {};
      for (const k of new Set(loc.searchParams.keys())) record.params[k] = loc.searchParams.getAll(k);
    }
  }

  /** The last authorization response, checked like a careful client would (RFC 9207 iss, state, single values). */
  lastAuthorization() {
    return this.authorizations[this.authorizations.length - 1];
  }
}
