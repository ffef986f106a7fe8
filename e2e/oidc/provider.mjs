// A real OAuth 2.1 authorization server for the end-to-end tests of
// agentmesh's resource server (pkg/auth/e2e_test.go): oidc-provider on
// 127.0.0.1 with the client credentials grant, resource indicators
// (RFC 8707) and token introspection (RFC 7662) enabled.
//
//   node e2e/oidc/provider.mjs --jwt URI [--jwt URI...] [--opaque URI...] [--ttl SECONDS]
//
// A token requested with resource=URI for a --jwt URI is an RFC 9068 JWT
// (ES256) whose aud is URI; for an --opaque URI it is opaque, for
// introspection. Any other resource is refused (invalid_target).
//
// Clients (client_secret_basic):
//   alice-app / alice-secret  scopes "mcp:tools files:read mcp:admin", groups [eng], department platform
//   bob-app   / bob-secret    scope  "mcp:tools",                      groups [ops], department support
//   agentmesh / agentmesh-secret     introspects tokens
//
// Prints {"issuer": "http://127.0.0.1:PORT"} as one line on stdout once it
// listens, then serves until stdin closes or SIGTERM (so it never outlives
// the test that started it). oidc-provider 9 wants Node >= 22.
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { createServer } from 'node:http';
import { parseArgs } from 'node:util';

import Provider, { errors } from 'oidc-provider';

const { values } = parseArgs({
  options: {
    jwt: { type: 'string', multiple: true, default: [] },
    opaque: { type: 'string', multiple: true, default: [] },
    ttl: { type: 'string', default: '300' },
  },
});
const jwtResources = new Set(values.jwt);
const opaqueResources = new Set(values.opaque);
if (jwtResources.size + opaqueResources.size === 0) {
  console.error('usage: provider.mjs --jwt RESOURCE_URI [--opaque RESOURCE_URI]');
  process.exit(2);
}

const RS_SCOPE = 'mcp:tools files:read mcp:admin';
const clientClaims = {
  'alice-app': { groups: ['eng'], department: 'platform' },
  'bob-app': { groups: ['ops'], department: 'support' },
};

// Signing keys made fresh for each run: nothing secret is committed.
function signingKey(type, options, alg, kid) {
  const { privateKey } = generateKeyPairSync(type, options);
  return { ...privateKey.export({ format: 'jwk' }), kid, alg, use: 'sig' };
}
const jwks = {
  keys: [
    signingKey('rsa', { modulusLength: 2048 }, 'RS256', 'rs-1'),
    signingKey('ec', { namedCurve: 'P-256' }, 'ES256', 'es-1'),
  ],
};

const client = (id, secret, scope) => ({
  client_id: id,
  client_secret: secret,
  grant_types: scope ? ['client_credentials'] : [],
  response_types: [],
  redirect_uris: [],
  token_endpoint_auth_method: 'client_secret_basic',
  ...(scope ? { scope } : {}),
});

const server = createServer();
server.listen(0, '127.0.0.1', () => {
  const issuer = `http://127.0.0.1:${server.address().port}`;
  const provider = new Provider(issuer, {
    clients: [
      client('alice-app', 'alice-secret', RS_SCOPE),
      client('bob-app', 'bob-secret', 'mcp:tools'),
      client('agentmesh', 'agentmesh-secret'), // introspection only
    ],
    jwks,
    cookies: { keys: [randomBytes(32).toString('base64url')] },
    scopes: ['openid', ...RS_SCOPE.split(' ')],
    features: {
      devInteractions: { enabled: false },
      clientCredentials: { enabled: true },
      introspection: { enabled: true },
      revocation: { enabled: true },
      resourceIndicators: {
        enabled: true,
        defaultResource: () => undefined,
        useGrantedResource: () => true,
        getResourceServerInfo(ctx, resource) {
          const info = { scope: RS_SCOPE, audience: resource, accessTokenTTL: Number(values.ttl) };
          if (jwtResources.has(resource)) {
            return { ...info, accessTokenFormat: 'jwt', jwt: { sign: { alg: 'ES256' } } };
          }
          if (opaqueResources.has(resource)) {
            return { ...info, accessTokenFormat: 'opaque' };
          }
          throw new errors.InvalidTarget();
        },
      },
    },
    extraTokenClaims(ctx, token) {
      return clientClaims[token.clientId];
    },
  });
  server.on('request', provider.callback());
  process.stdout.write(`${JSON.stringify({ issuer })}\n`);
});

const stop = () => server.close(() => process.exit(0));
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
process.stdin.on('end', stop);
process.stdin.resume();
