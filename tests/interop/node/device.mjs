// Drive openid-client's device functions (RFC 8628), unmodified, against a jwtauth server.
// Usage: node device.mjs ISSUER CLIENT_ID CLIENT_SECRET SCOPE
// Prints the device authorization response as one JSON line, then the token response's
// fields as another once the user approved (pollDeviceAuthorizationGrant keeps the interval).
import * as client from 'openid-client'

const [issuer, clientId, clientSecret, scope] = process.argv.slice(2)
// Plain http is allowed for the loopback test server only; nothing else is changed.
const config = await client.discovery(new URL(issuer), clientId, clientSecret, undefined, {
  execute: [client.allowInsecureRequests],
})
const started = await client.initiateDeviceAuthorization(config, { scope })
process.stdout.write(JSON.stringify(started) + '\n')
const tokens = await client.pollDeviceAuthorizationGrant(config, started, undefined, {
  signal: AbortSignal.timeout(60_000),
})
process.stdout.write(JSON.stringify({
  access_token: tokens.access_token,
  token_type: tokens.token_type,
  scope: tokens.scope,
  refresh_token: tokens.refresh_token,
  expires_in: tokens.expiresIn(),
}) + '\n')
