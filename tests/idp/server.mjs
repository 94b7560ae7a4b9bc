// OpenID Connect provider for the test suite: panva's oidc-provider with minimal interactions.
//
//   node tests/idp/server.mjs --hub    one JSON request per stdin line, one answer per stdout
//                                      line (after `HUB READY`):
//     {"start": CONFIG}  -> {"ready": issuer} or {"error": message}   a provider on CONFIG's port
//     {"stop": port}     -> {"stopped": port}                          closed, its connections too
//
// Started and configured by tests/oidc_provider.py (see there for the config's shape); a test
// process keeps one hub, so a test's provider costs no Node.js start. Keeps everything in memory:
// restart to rotate keys. Written for Node 18 and 20 alike (Debian bookworm ships 18).
import { createServer } from 'node:http';
import { createInterface } from 'node:readline';

import Provider, { errors } from 'oidc-provider';

const SIGNING_ALGS = new Set(['RS256', 'ES256']);

function fail(message) {
  process.stderr.write(`idp: ${message}\n`);
  process.exit(2);
}

// What is wrong with a config, or null.
function configProblem(config) {
  if (typeof config !== 'object' || config === null) return 'config: must be an object';
  const { issuer, port, keys, clients, accounts } = config;
  if (typeof issuer !== 'string' || !issuer.startsWith('http')) return 'config: "issuer" must be an http(s) URL';
  if (!Number.isInteger(port) || port <= 0) return 'config: "port" must be a positive integer';
  if (!Array.isArray(keys) || !keys.length) return 'config: "keys" must be a non-empty list of private JWKs';
  for (const key of keys) {
    if (!key.kid || !SIGNING_ALGS.has(key.alg) || key.use !== 'sig' || !key.d) {
      return `config: key ${key.kid ?? '?'} needs kid, alg (RS256 or ES256), use "sig" and its private part`;
    }
  }
  if (!Array.isArray(clients) || !clients.length) return 'config: "clients" must be a non-empty list';
  for (const client of clients) {
    for (const field of ['client_id', 'client_secret', 'redirect_uris', 'audience']) {
      if (!client[field]) return `config: client ${client.client_id ?? '?'} lacks "${field}"`;
    }
  }
  if (typeof accounts !== 'object' || accounts === null) return 'config: "accounts" must be an object';
  return null;
}

function htmlEscape(text) {
  return String(text).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

async function bodyRead(req) {
  const chunks = [];
  for await (const chunk of req) chunks.push(chunk);
  return Buffer.concat(chunks).toString('utf8');
}

function loginPage(uid, error) {
  return `<!DOCTYPE html><html><head><title>Sign in</title></head><body>
${error ? `<p id="error">${error}</p>` : ''}
<form method="post" action="/interaction/${uid}/login">
<input name="login" id="login" autofocus><button type="submit" id="submit">Sign in</button>
</form></body></html>`;
}

// A provider for `config` listening on 127.0.0.1:config.port: resolves to its server once it listens.
function serve(config) {
  // Replaced wholesale by PUT /__test/accounts; looked up by `sub` (the provider's accountId).
  let accounts = config.accounts;
  const signingAlg = config.keys[0].alg;
  const signingKid = config.keys[0].kid;
  const clientsById = new Map(config.clients.map((client) => [client.client_id, client]));

  function accountBySub(sub) {
    return Object.values(accounts).find((account) => account.sub === sub);
  }

  // The resource indicator of a client's API is its configured audience, e.g. "api://foundry".
  function resourceOf(clientId) {
    return clientsById.get(clientId).audience;
  }

  const provider = new Provider(config.issuer, {
    clients: config.clients.map(({ audience, ...client }) => ({
      grant_types: ['authorization_code'],
      response_types: ['code'],
      // What mozilla-django-oidc does by default: client_id and client_secret in the form body.
      token_endpoint_auth_method: 'client_secret_post',
      // The keystore picks the first key of this alg, so keys[0] signs ID tokens.
      id_token_signed_response_alg: signingAlg,
      ...client,
    })),
    jwks: { keys: config.keys },
    cookies: { keys: ['foundry-test-idp-cookie-secret-9c1f7a2e4b'] },
    scopes: ['openid', 'email', 'profile', 'groups'],
    claims: {
      openid: ['sub'],
      email: ['email', 'email_verified'],
      profile: ['name'],
      groups: ['groups'],
    },
    // Scope-requested claims go into the ID token itself, so relying parties need no userinfo call.
    conformIdTokenClaims: false,
    pkce: { required: () => true, methods: ['S256'] },
    ttl: {
      AccessToken: config.access_token_ttl ?? 600,
      IdToken: config.id_token_ttl ?? 600,
      AuthorizationCode: 60,
      Interaction: 600,
      Session: 3600,
      Grant: 3600,
    },
    features: {
      devInteractions: { enabled: false },
      rpInitiatedLogout: {
        enabled: true,
        // Confirm the logout without asking: the browser lands straight on post_logout_redirect_uri.
        async logoutSource(ctx, form) {
          const confirmed = form.replace('</form>', '<input type="hidden" name="logout" value="yes"></form>');
          ctx.body = `<!DOCTYPE html><html><head><title>Signing out</title></head><body>${confirmed}
  <script>document.getElementById('op.logoutForm').submit();</script></body></html>`;
        },
      },
      resourceIndicators: {
        enabled: true,
        defaultResource: (ctx, client) => resourceOf(client.clientId),
        useGrantedResource: () => true,
        getResourceServerInfo(ctx, resourceIndicator, client) {
          if (resourceIndicator !== resourceOf(client.clientId)) throw new errors.InvalidTarget();
          return {
            scope: 'openid email profile groups',
            audience: resourceIndicator,
            accessTokenFormat: 'jwt',
            jwt: { sign: { alg: signingAlg, kid: signingKid } },
          };
        },
      },
    },
    async extraTokenClaims(ctx, token) {
      const account = accountBySub(token.accountId);
      return account ? { email: account.email, groups: account.groups ?? [] } : undefined;
    },
    async findAccount(ctx, sub) {
      const account = accountBySub(sub);
      if (!account) return undefined;
      return {
        accountId: sub,
        async claims() {
          const { email, email_verified: emailVerified, name, groups } = accountBySub(sub) ?? account;
          return { sub, email, email_verified: emailVerified, name, groups };
        },
      };
    },
    interactions: { url: (ctx, interaction) => `/interaction/${interaction.uid}` },
    async renderError(ctx, out) {
      ctx.type = 'html';
      ctx.body = `<!DOCTYPE html><html><body><h1>${htmlEscape(out.error)}</h1>
  <p>${htmlEscape(out.error_description ?? '')}</p></body></html>`;
    },
  });

  // Grant everything the client asked for (a first-party test IdP has no consent screen).
  async function grantRequested(details, accountId) {
    const { params, grantId } = details;
    const existing = grantId && (await provider.Grant.find(grantId));
    // An earlier grant of the session belongs to whoever was signed in before; keep it only if that is this account.
    const grant = existing?.accountId === accountId
      ? existing
      : new provider.Grant({ accountId, clientId: params.client_id });
    grant.addOIDCScope(params.scope);
    for (const resource of [].concat(params.resource ?? resourceOf(params.client_id))) {
      grant.addResourceScope(resource, params.scope);
    }
    return grant.save();
  }

  // Finish the interaction: the provider resumes the authorization request with this result.
  async function interactionFinish(ctx, result) {
    const returnTo = await provider.interactionResult(ctx.req, ctx.res, result, { mergeWithLastSubmission: false });
    ctx.status = 303;
    ctx.redirect(returnTo);
  }

  // Test-only admin routes and the interactions, ahead of the provider's own routes.
  provider.use(async (ctx, next) => {
    if (ctx.path === '/__test/accounts' && ctx.method === 'PUT') {
      accounts = JSON.parse(await bodyRead(ctx.req));
      ctx.status = 204;
      return;
    }
    const match = ctx.path.match(/^\/interaction\/([^/]+)(\/login)?$/);
    if (!match) {
      await next();
      return;
    }
    const [, uid, loginStep] = match;
    const details = await provider.interactionDetails(ctx.req, ctx.res);
    if (details.uid !== uid) throw new errors.SessionNotFound('interaction mismatch');

    if (!loginStep && ctx.method === 'GET') {
      if (details.prompt.name === 'consent') {
        const grantId = await grantRequested(details, details.session.accountId);
        await interactionFinish(ctx, { consent: { grantId } });
        return;
      }
      ctx.type = 'html';
      ctx.body = loginPage(uid);
      return;
    }
    if (loginStep && ctx.method === 'POST') {
      const form = new URLSearchParams(await bodyRead(ctx.req));
      const login = form.get('login') ?? '';
      const account = Object.hasOwn(accounts, login) ? accounts[login] : undefined;
      if (!account) {
        ctx.type = 'html';
        ctx.body = loginPage(uid, 'Unknown user');
        return;
      }
      const grantId = await grantRequested(details, account.sub);
      await interactionFinish(ctx, { login: { accountId: account.sub }, consent: { grantId } });
      return;
    }
    ctx.status = 405;
  });

  return new Promise((resolve, reject) => {
    const server = createServer(provider.callback());
    server.once('error', (err) => reject(new Error(`cannot listen on 127.0.0.1:${config.port}: ${err.message}`)));
    server.listen(config.port, '127.0.0.1', () => resolve(server));
  });
}

if (process.argv[2] === '--hub') {
  const servers = new Map();
  const answer = (message) => process.stdout.write(`${JSON.stringify(message)}\n`);
  const lines = createInterface({ input: process.stdin });
  // One request at a time, in order: each answer is the reply to the line before it.
  let queue = Promise.resolve();
  lines.on('line', (line) => {
    queue = queue.then(async () => {
      let request;
      try {
        request = JSON.parse(line);
      } catch (err) {
        answer({ error: `not JSON: ${err.message}` });
        return;
      }
      if (request.stop !== undefined) {
        const server = servers.get(request.stop);
        servers.delete(request.stop);
        if (server) {
          server.closeAllConnections();
          await new Promise((resolve) => server.close(resolve));
        }
        answer({ stopped: request.stop });
        return;
      }
      const problem = configProblem(request.start);
      if (problem) {
        answer({ error: problem });
        return;
      }
      try {
        servers.set(request.start.port, await serve(request.start));
        answer({ ready: request.start.issuer });
      } catch (err) {
        answer({ error: err.message });
      }
    });
  });
  lines.on('close', () => process.exit(0)); // the test process is gone
  answer('HUB READY');
} else {
  fail('usage: node server.mjs --hub');
}
