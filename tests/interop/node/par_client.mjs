// oauth4webapi, unmodified: the FAPI 2.0 flow. private_key_jwt + PAR (with PKCE and a DPoP proof),
// the browser step done by the caller, then the code exchange with DPoP.
// Usage: node par_client.mjs ISSUER CLIENT_ID PRIVATE_JWK_JSON REDIRECT_URI
//   stdout line 1: {"authorization_url": ...}; stdin: the callback URL; stdout line 2: the result.
import * as oauth from 'oauth4webapi'
import { createInterface } from 'node:readline'

const [issuer, clientId, privateJwk, redirectUri] = process.argv.slice(2)
const insecure = { [oauth.allowInsecureRequests]: true } // the test server is http on loopback
const as = await oauth.processDiscoveryResponse(
  new URL(issuer), await oauth.discoveryRequest(new URL(issuer), insecure))
const client = { client_id: clientId }
const jwk = JSON.parse(privateJwk)
const key = await crypto.subtle.importKey(
  'jwk', jwk, { name: 'ECDSA', namedCurve: 'P-256' }, false, ['sign'])
const clientAuth = oauth.PrivateKeyJwt({ key, kid: jwk.kid })
const DPoP = oauth.DPoP(client, await oauth.generateKeyPair('ES256'))

const verifier = oauth.generateRandomCodeVerifier()
const state = oauth.generateRandomState()
const pushed = await oauth.processPushedAuthorizationResponse(as, client,
  await oauth.pushedAuthorizationRequest(as, client, clientAuth, {
    response_type: 'code', redirect_uri: redirectUri, scope: 'read', state,
    code_challenge: await oauth.calculatePKCECodeChallenge(verifier), code_challenge_method: 'S256',
  }, { DPoP, ...insecure }))
const url = new URL(as.authorization_endpoint)
url.searchParams.set('client_id', clientId)
url.searchParams.set('request_uri', pushed.request_uri)
console.log(JSON.stringify({ authorization_url: url.href, expires_in: pushed.expires_in }))

const lines = createInterface({ input: process.stdin })
const callback = await new Promise((resolve) => lines.once('line', resolve))
lines.close()
const params = oauth.validateAuthResponse(as, client, new URL(callback), state)
const token = await oauth.processAuthorizationCodeResponse(as, client,
  await oauth.authorizationCodeGrantRequest(as, client, clientAuth, params, redirectUri, verifier,
    { DPoP, ...insecure }))
const refreshed = await oauth.processRefreshTokenResponse(as, client,
  await oauth.refreshTokenGrantRequest(as, client, clientAuth, token.refresh_token, { DPoP, ...insecure }))
console.log(JSON.stringify({
  token_type: token.token_type, scope: token.scope, refreshed_type: refreshed.token_type,
  access_token: token.access_token,
}))
