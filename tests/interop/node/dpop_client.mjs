// oauth4webapi, unmodified: client_credentials with DPoP, then the bound token at a resource server.
// Usage: node dpop_client.mjs ISSUER RESOURCE_URL  -> one JSON line on stdout.
import * as oauth from 'oauth4webapi'

const [issuer, resourceUrl] = process.argv.slice(2)
const insecure = { [oauth.allowInsecureRequests]: true } // the test server is http on loopback
const as = await oauth.processDiscoveryResponse(
  new URL(issuer), await oauth.discoveryRequest(new URL(issuer), insecure))
const client = { client_id: 'testclient' }
const DPoP = oauth.DPoP(client, await oauth.generateKeyPair('ES256'))
const grant = () => oauth.clientCredentialsGrantRequest(
  as, client, oauth.ClientSecretBasic('testpassword'), new URLSearchParams({ scope: 'read' }),
  { DPoP, ...insecure })
const token = await oauth.processClientCredentialsResponse(as, client, await grant())
const call = () => oauth.protectedResourceRequest(
  token.access_token, 'GET', new URL(resourceUrl), new Headers(), null, { DPoP, ...insecure })
let resource
try {
  resource = await call()
} catch (err) {
  // RFC 9449 §9: a resource server nonce; oauth4webapi remembers it and the request is retried,
  // as its documentation says to.
  if (!oauth.isDPoPNonceError(err)) throw err
  resource = await call()
}
console.log(JSON.stringify({ token_type: token.token_type, status: resource.status, body: await resource.json() }))
