// A real OpenID Provider (oidc-provider) for the OAuth tests, on loopback, with no browser needed.
//
//   node idp.mjs <port> <resource> <client_id> <redirect_uri> [<page_client_id> <page_redirect_uri> <page_secret>]
//
// - issuer http://127.0.0.1:<port>; one RS256 signing key generated at start;
// - one static public client (PKCE, no secret) with the given redirect URI, and optionally the approval
//   page's confidential client (client_secret_basic, PKCE too) with its own redirect URI;
// - access tokens for <resource> are JWTs (RFC 9068) whose audience is the resource, with the user's
//   `email` added; the scopes offered for it are gpu.read, gpu.write, gpu.approve, gpu.admin;
// - sign-in: the interaction page logs in the user named by `login_hint` (reader, writer, approver,
//   admin, lead) without a page; with no `login_hint` it shows a login form (a browser types the user name);
//   consent grants the requested scopes that user holds and rejects the rest, without a page.
// Prints "ready <issuer>" on stdout once it listens.
import { createPrivateKey, generateKeyPairSync } from 'node:crypto';
import Provider from 'oidc-provider';

const [port, resource, clientId, redirectUri, pageClientId, pageRedirectUri, pageSecret] = process.argv.slice(2);
const issuer = `http://127.0.0.1:${port}`;
const GPU_SCOPES = ['gpu.read', 'gpu.write', 'gpu.approve', 'gpu.admin'];
const USERS = {
  reader: ['gpu.read'],
  writer: ['gpu.read', 'gpu.write'],
  approver: ['gpu.read', 'gpu.approve'],
  admin: ['gpu.read', 'gpu.approve', 'gpu.admin'],
  lead: ['gpu.read', 'gpu.write', 'gpu.approve'],
};

// The key is generated as PEM text and read back as a key object of its own before its JWK is
// exported: exporting the generated key object itself can deadlock Node 20 for good, when a garbage
// collection during the export destroys the generation job, which locks that same key (seen once in
// about 120 test runs: the process never listened).
const { privateKey: pem } = generateKeyPairSync('rsa', {
  modulusLength: 2048,
  privateKeyEncoding: { type: 'pkcs8', format: 'pem' },
  publicKeyEncoding: { type: 'spki', format: 'pem' },
});
const jwk = { ...createPrivateKey(pem).export({ format: 'jwk' }), kid: 'idp-key-1', alg: 'RS256', use: 'sig' };

const provider = new Provider(issuer, {
  jwks: { keys: [jwk] },
  clients: [
    {
      client_id: clientId,
      token_endpoint_auth_method: 'none',
      redirect_uris: [redirectUri],
      grant_types: ['authorization_code'],
      response_types: ['code'],
    },
    ...(pageClientId
      ? [
          {
            client_id: pageClientId,
            client_secret: pageSecret,
            token_endpoint_auth_method: 'client_secret_basic',
            redirect_uris: [pageRedirectUri],
            grant_types: ['authorization_code'],
            response_types: ['code'],
          },
        ]
      : []),
  ],
  scopes: ['openid', 'email'],
  claims: { openid: ['sub'], email: ['email', 'email_verified'] },
  pkce: { required: () => true },
  features: {
    devInteractions: { enabled: false },
    resourceIndicators: {
      enabled: true,
      defaultResource: () => resource,
      useGrantedResource: () => true,
      getResourceServerInfo: (ctx, indicator) => {
        if (indicator !== resource) throw new Error(`unknown resource ${indicator}`);
        return {
          scope: GPU_SCOPES.join(' '),
          audience: resource,
          accessTokenFormat: 'jwt',
          accessTokenTTL: 600,
          jwt: { sign: { alg: 'RS256' } },
        };
      },
    },
  },
  extraTokenClaims: (ctx, token) => (token.accountId ? { email: `${token.accountId}@example.com` } : undefined),
  findAccount: (ctx, id) => ({
    accountId: id,
    claims: () => ({ sub: id, email: `${id}@example.com`, email_verified: true }),
  }),
  interactions: { url: (ctx, interaction) => `/interaction/${interaction.uid}` },
  ttl: { Interaction: 600, Session: 600, Grant: 600, AccessToken: 600, AuthorizationCode: 120 },
});

async function formBody(req) {
  let raw = '';
  for await (const chunk of req) raw += chunk;
  return new URLSearchParams(raw);
}

provider.use(async (ctx, next) => {
  if (!ctx.path.startsWith('/interaction/')) return next();
  const details = await provider.interactionDetails(ctx.req, ctx.res);
  const { prompt, params, session } = details;
  let user = params.login_hint ? String(params.login_hint) : undefined;
  if (prompt.name === 'login' && !user) {
    if (ctx.method !== 'POST') {
      ctx.type = 'html';
      ctx.body = `<!doctype html><title>Test IdP sign-in</title><form method="post" action="${ctx.path}">
<label for="username">User</label> <input id="username" name="username" autofocus>
<button type="submit">Sign in</button></form>`;
      return;
    }
    user = String((await formBody(ctx.req)).get('username') || '');
    if (!USERS[user]) {
      ctx.status = 403;
      ctx.body = 'no such user';
      return;
    }
  }
  const holds = USERS[session?.accountId || user || 'reader'] || [];
  let result;
  if (prompt.name === 'login') {
    result = { login: { accountId: user } };
  } else {
    const grant = details.grantId
      ? await provider.Grant.find(details.grantId)
      : new provider.Grant({ accountId: session.accountId, clientId: params.client_id });
    const missing = prompt.details;
    if (missing.missingOIDCScope) grant.addOIDCScope(missing.missingOIDCScope.join(' '));
    if (missing.missingOIDCClaims) grant.addOIDCClaims(missing.missingOIDCClaims);
    for (const [indicator, scopes] of Object.entries(missing.missingResourceScopes || {})) {
      const allowed = scopes.filter((s) => holds.includes(s));
      const refused = scopes.filter((s) => !holds.includes(s));
      if (allowed.length) grant.addResourceScope(indicator, allowed.join(' '));
      if (refused.length) grant.rejectResourceScope(indicator, refused.join(' '));
    }
    result = { consent: { grantId: await grant.save() } };
  }
  const to = await provider.interactionResult(ctx.req, ctx.res, result, { mergeWithLastSubmission: true });
  ctx.status = 303;
  ctx.redirect(to);
});

provider.listen(Number(port), '127.0.0.1', () => {
  process.stdout.write(`ready ${issuer}\n`);
});
