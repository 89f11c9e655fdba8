// node-oidc-provider as make bench's peer (PEERS=1), configured like jwtauth is benchmarked:
// a cluster of 2 workers (node:cluster) on one port, ES256 JWT access tokens for one resource
// server (resource indicators, accessTokenFormat 'jwt'), refresh-token rotation on, and its
// grants in Redis (ioredis, on its own key prefix) so both workers see every grant.
//
//   node provider.mjs serve   PORT  REDIS_URL  KEY_PREFIX    the cluster; prints "ready" once listening
//   node provider.mjs mint    COUNT REDIS_URL  KEY_PREFIX    COUNT refresh tokens, one a line on stdout
//
// `mint` starts the same provider without listening and creates, through its own models, one
// Grant and one RefreshToken per line, as its authorization_code grant would after a sign-in
// (scope offline_access + the resource server's read write): the bench then rotates each of
// them, one connection per family at a time, as it does jwtauth's refresh families.
// The signing key comes from PEER_JWK (a private EC P-256 JWK): bench/peers.py makes one per run.

import cluster from 'node:cluster';
import process from 'node:process';

import Redis from 'ioredis';
import Provider from 'oidc-provider';

const [mode, arg, redisUrl, keyPrefix] = process.argv.slice(2);
const RESOURCE = 'https://api.example.com';
const CLIENT = { id: 'testclient', secret: 'testpassword' };
const ACCOUNT = 'testuser@example.com';
const WORKERS = 2;
const TTL = 3600;

// Which models carry a grantId (revoked with their grant) and which can be consumed: the
// adapter interface of node-oidc-provider (its docs' example Redis adapter, trimmed).
const GRANTABLE = new Set(['AccessToken', 'AuthorizationCode', 'RefreshToken', 'DeviceCode', 'BackchannelAuthenticationRequest']);
const CONSUMABLE = new Set(['AuthorizationCode', 'RefreshToken', 'DeviceCode', 'BackchannelAuthenticationRequest']);

function adapterFor(client) {
  return class RedisAdapter {
    constructor(name) {
      this.name = name;
    }

    key(id) {
      return `${this.name}:${id}`;
    }

    async upsert(id, payload, expiresIn) {
      const key = this.key(id);
      const multi = client.multi();
      if (CONSUMABLE.has(this.name)) {
        multi.hset(key, { payload: JSON.stringify(payload) });
      } else {
        multi.set(key, JSON.stringify(payload));
      }
      // Every key expires: the bench also deletes its prefix at the end.
      multi.expire(key, expiresIn || TTL);
      if (GRANTABLE.has(this.name) && payload.grantId) {
        const grantKey = `grant:${payload.grantId}`;
        multi.rpush(grantKey, key);
        multi.expire(grantKey, Math.max(expiresIn || TTL, TTL));
      }
      if (payload.userCode) {
        multi.set(`userCode:${payload.userCode}`, id, 'EX', expiresIn || TTL);
      }
      if (payload.uid) {
        multi.set(`uid:${payload.uid}`, id, 'EX', expiresIn || TTL);
      }
      await multi.exec();
    }

    async find(id) {
      const key = this.key(id);
      const data = CONSUMABLE.has(this.name) ? await client.hgetall(key) : await client.get(key);
      if (!data || (typeof data === 'object' && !data.payload)) return undefined;
      if (typeof data === 'string') return JSON.parse(data);
      const { payload, ...rest } = data;
      return { ...rest, ...JSON.parse(payload) };
    }

    async findByUid(uid) {
      const id = await client.get(`uid:${uid}`);
      return id ? this.find(id) : undefined;
    }

    async findByUserCode(userCode) {
      const id = await client.get(`userCode:${userCode}`);
      return id ? this.find(id) : undefined;
    }

    async consume(id) {
      await client.hset(this.key(id), 'consumed', Math.floor(Date.now() / 1000));
    }

    async destroy(id) {
      await client.del(this.key(id));
    }

    async revokeByGrantId(grantId) {
      const grantKey = `grant:${grantId}`;
      const keys = await client.lrange(grantKey, 0, -1);
      await client.del(...keys, grantKey);
    }
  };
}

function provider(issuer) {
  const redis = new Redis(redisUrl, { keyPrefix });
  const jwk = JSON.parse(process.env.PEER_JWK);
  const configuration = {
    adapter: adapterFor(redis),
    clients: [{
      client_id: CLIENT.id,
      client_secret: CLIENT.secret,
      grant_types: ['client_credentials', 'refresh_token', 'authorization_code'],
      redirect_uris: ['https://client.example.com/callback'],
      scope: 'openid offline_access read write',
      id_token_signed_response_alg: 'ES256',
    }],
    scopes: ['openid', 'offline_access', 'read', 'write'],
    jwks: { keys: [{ ...jwk, kid: 'peer-es256', alg: 'ES256', use: 'sig' }] },
    cookies: { keys: ['bench-peer-cookie-key'] },
    findAccount: (ctx, sub) => ({ accountId: sub, claims: () => ({ sub }) }),
    rotateRefreshToken: true,
    ttl: { Grant: TTL, RefreshToken: TTL, AccessToken: 900, ClientCredentials: 900 },
    features: {
      devInteractions: { enabled: false },
      clientCredentials: { enabled: true },
      resourceIndicators: {
        enabled: true,
        defaultResource: () => RESOURCE,
        useGrantedResource: () => true,
        getResourceServerInfo: () => ({
          scope: 'read write',
          accessTokenFormat: 'jwt',
          accessTokenTTL: 900,
          jwt: { sign: { alg: 'ES256' } },
        }),
      },
    },
  };
  return { oidc: new Provider(issuer, configuration), redis };
}

async function mint(count) {
  const { oidc, redis } = provider('http://127.0.0.1');
  const client = await oidc.Client.find(CLIENT.id);
  const out = [];
  for (let i = 0; i < count; i += 1) {
    const grant = new oidc.Grant({ accountId: ACCOUNT, clientId: CLIENT.id });
    grant.addOIDCScope('offline_access');
    grant.addResourceScope(RESOURCE, 'read write');
    const grantId = await grant.save();
    const token = new oidc.RefreshToken({
      accountId: ACCOUNT,
      client,
      grantId,
      gty: 'authorization_code',
      resource: RESOURCE,
      scope: 'offline_access read write',
      authTime: Math.floor(Date.now() / 1000),
    });
    out.push(await token.save());
  }
  process.stdout.write(out.map((line) => `${line}\n`).join(''));
  redis.disconnect();
}

function serve(port) {
  if (cluster.isPrimary) {
    for (let i = 0; i < WORKERS; i += 1) cluster.fork();
    let listening = 0;
    cluster.on('listening', () => {
      listening += 1;
      if (listening === WORKERS) process.stdout.write('ready\n');
    });
    const stop = () => {
      for (const worker of Object.values(cluster.workers)) worker.kill();
      process.exit(0);
    };
    process.on('SIGTERM', stop);
    process.on('SIGINT', stop);
    return;
  }
  const { oidc } = provider(`http://127.0.0.1:${port}`);
  oidc.listen(Number(port), '127.0.0.1');
}

if (mode === 'serve') {
  serve(arg);
} else if (mode === 'mint') {
  await mint(Number(arg));
} else {
  process.stderr.write('usage: node provider.mjs serve PORT REDIS_URL PREFIX | mint COUNT REDIS_URL PREFIX\n');
  process.exit(2);
}
