// An oidc-provider peer of mcpgate's /oauth/token.
//
// usage: node oidc_provider.mjs PORT
//
// One confidential client (client_secret_post) with the client_credentials
// and authorization_code (+ PKCE S256) grants. Access tokens are issued for
// the resource https://mcp.internal.example/mcp as EdDSA (Ed25519) JWTs, like
// mcpgate's, except for client `bench-opaque`, which gets oidc-provider's
// default opaque tokens (stored in the adapter). oidc-provider's own
// in-memory adapter, but its LRU holds 1,000 entries (a code flow stores ~4:
// pre-minted codes were evicted), so here it gets a store of 2 million:
// what a Redis adapter would hold, without the network hop. One Node
// process. The interaction (login + consent) is answered at once for the
// account in login_hint: the benchmark times code exchanges, not sign-ins.
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import Provider from 'oidc-provider';
// The package has no "exports" map, so its own memory adapter can be reused.
import MemoryAdapter from 'oidc-provider/lib/adapters/memory_adapter.js';
import LRU from 'oidc-provider/lib/helpers/lru.js';

const port = Number(process.argv[2]);
const RESOURCE = 'https://mcp.internal.example/mcp';
const REDIRECT = 'http://127.0.0.1:33418/callback';
const jwk = (type, opts) => generateKeyPairSync(type, opts).privateKey.export({ format: 'jwk' });

const client = (id) => ({
  client_id: id,
  client_secret: 'bench-secret-bench-secret-bench-secret',
  application_type: 'native', // loopback http redirect URI
  redirect_uris: [REDIRECT],
  grant_types: ['authorization_code', 'client_credentials'],
  response_types: ['code'],
  token_endpoint_auth_method: 'client_secret_post',
  scope: 'mcp',
});

const store = new LRU({ maxSize: 2_000_000 });
const provider = new Provider(`http://127.0.0.1:${port}`, {
  adapter: (model) => new MemoryAdapter(model, store),
  clients: [client('bench'), client('bench-opaque')],
  // RS256 for ID tokens (never issued here: no openid scope), Ed25519 for access tokens.
  jwks: { keys: [{ ...jwk('rsa', { modulusLength: 2048 }), alg: 'RS256', use: 'sig', kid: 'rs' },
                 { ...jwk('ed25519'), alg: 'EdDSA', use: 'sig', kid: 'ed' }] },
  cookies: { keys: [randomBytes(32).toString('hex')] },
  scopes: ['mcp'],
  findAccount: (ctx, id) => ({ accountId: id, claims: () => ({ sub: id, email: id }) }),
  features: {
    devInteractions: { enabled: false },
    clientCredentials: { enabled: true },
    resourceIndicators: {
      enabled: true,
      defaultResource: (ctx, c) => (c.clientId === 'bench-opaque' ? undefined : RESOURCE),
      useGrantedResource: () => true,
      getResourceServerInfo: () => ({
        scope: 'mcp', audience: RESOURCE, accessTokenTTL: 3600,
        accessTokenFormat: 'jwt', jwt: { sign: { alg: 'EdDSA' } },
      }),
    },
  },
  // Codes are minted before the timed phases and must outlive them (default 60 s).
  ttl: { AuthorizationCode: 600, AccessToken: 3600, ClientCredentials: 3600, Grant: 3600, Interaction: 600, Session: 3600 },
});

// The interaction page: sign in the login_hint account and grant `mcp` at once.
provider.use(async (ctx, next) => {
  if (!ctx.path.startsWith('/interaction/')) return next();
  const { params } = await provider.interactionDetails(ctx.req, ctx.res);
  const accountId = params.login_hint || 'user@example.com';
  const grant = new provider.Grant({ accountId, clientId: params.client_id });
  grant.addOIDCScope('mcp'); // `scopes` lists it, so the consent prompt checks it as an OP scope too
  grant.addResourceScope(RESOURCE, 'mcp');
  const grantId = await grant.save();
  ctx.redirect(await provider.interactionResult(ctx.req, ctx.res,
    { login: { accountId }, consent: { grantId } }, { mergeWithLastSubmission: false }));
});

provider.listen(port, '127.0.0.1', () => console.log(`oidc-provider listening on 127.0.0.1:${port}`));
