"""Every setting's default, once, by its dotted TOML key."""

from __future__ import annotations

from typing import Any

# The Settings dataclass and the TOML reader both read this table, so a default cannot differ
# between code and file; each table's allowed keys are the ones named here.
DEFAULTS: dict[str, Any] = {
    "issuer": "",
    "default_audience": "",
    "allow_http_issuer": False,  # development only: an http:// issuer that is not loopback
    "lifetimes.access_token": 900,
    "lifetimes.authorization_code": 60,
    "lifetimes.refresh_idle": 14 * 86400,  # never above refresh_absolute
    "lifetimes.refresh_absolute": 30 * 86400,
    "lifetimes.refresh_grace": 5,
    "keys.dir": "keys",
    "keys.algorithm": "ES256",
    "keys.jwks_max_age": 300,
    "keys.publish_ahead": 300,  # never below jwks_max_age
    "keys.revocations_max_age": 30,  # how long verifiers may cache the revocation document
    "redis.url": None,
    "redis.prefix": "jwtauth:",
    "limits.max_failures": 5,
    "limits.window": 300,
    # The password grant's address is the client's backend: (client, address) gets this budget.
    "limits.client_max_failures": 100,
    # A device that signed in as a user passes that user's lock for this long (issue 18).
    "limits.known_device_ttl": 30 * 86400,
    # Failed client authentications that cost scrypt, per address and per client id (issue 18).
    "limits.client_auth_failures": 10,
    "limits.trusted_proxies": (),
    "pages.templates": None,
    "dpop.proof_window": 60,  # how old a DPoP proof's iat may be; its jti is remembered this long
    "dpop.require_nonce": False,  # RFC 9449 §8: every proof must carry a server nonce
    "dpop.nonce_lifetime": 300,  # nonces rotate this often (each stays valid one slot either side)
    "sessions.lifetime": 10 * 3600,  # a browser session (SSO) lasts this long after sign-in
    "client_id_metadata.enabled": False,
    "client_id_metadata.allowed_hosts": (),
    "client_id_metadata.scopes": (),
    "client_id_metadata.audiences": (),
    "client_id_metadata.allow_insecure_loopback": False,
    # RFC 7523 private_key_jwt: `aud` is our issuer; the token endpoint URL only if this is true
    # (never for a fapi2 client). Development only: fetch a jwks_uri on a loopback IP literal.
    "client_auth.accept_token_endpoint_audience": False,
    "client_auth.allow_insecure_loopback": False,
    "par.require": False,  # RFC 9126 §5 require_pushed_authorization_requests, for every client
    "par.lifetime": 60,  # seconds a pushed request stays usable (RFC 9126 §2.2 expires_in)
    # OpenID Connect Core §8.1: the secret of pairwise subjects; required once a client is
    # pairwise, and never changed afterwards (every pairwise sub would change with it).
    "oidc.pairwise_salt": None,
    "metrics.port": None,  # the management listener's port (/metrics, health); none = not served
}
