"""Every endpoint path of the public contract, once (DESIGN.md: other tools rely on these)."""

from __future__ import annotations

TOKEN = "/api/v1/tokens"  # noqa: S105  # a path, not a secret
AUTHORIZE = "/authorize"
REVOKE = "/api/v1/revoke"
INTROSPECT = "/api/v1/introspect"
USERINFO = "/api/v1/userinfo"  # OpenID Connect Core §5.3
PAR = "/api/v1/par"  # RFC 9126 pushed authorization requests
LOGOUT = "/logout"  # OpenID Connect RP-Initiated Logout: the end_session_endpoint
JWKS = ("/jwks", "/.well-known/jwks.json")
# RFC 8414 metadata, also served where OpenID Connect Discovery looks for it.
METADATA = ("/.well-known/oauth-authorization-server", "/.well-known/openid-configuration")
HEALTH = "/healthz"
READY = "/readyz"
READY_STORE = "/readyz/store"  # the store's own check, for alerts (not a probe)
METRICS = "/metrics"  # on the management listener only (--metrics-port)
DEVICE_AUTHORIZATION = "/api/v1/device_authorization"  # RFC 8628 §3.1
DEVICE = "/device"  # RFC 8628 §3.3: the verification page
# jwtauth extension: the signed revocation document offline verifiers subscribe to.
REVOCATIONS = "/api/v1/revocations"
# Endpoints that take POST only (RFC 6749 §3.2, RFC 7009 §2.1, RFC 7662 §2.1, RFC 8628 §3.1, RFC 9126 §2).
POST_ONLY = frozenset({TOKEN, REVOKE, INTROSPECT, DEVICE_AUTHORIZATION, PAR})

# The endpoint label of every route, for metrics, the access log and audit lines.
LABELS = {
    TOKEN: "token", AUTHORIZE: "authorize", REVOKE: "revoke", INTROSPECT: "introspect",
    METRICS: "metrics", USERINFO: "userinfo", HEALTH: "healthz", READY: "readyz", READY_STORE: "readyz",
    PAR: "par", LOGOUT: "logout", DEVICE_AUTHORIZATION: "device_authorization", DEVICE: "device",
    REVOCATIONS: "revocations", **dict.fromkeys(JWKS, "jwks"), **dict.fromkeys(METADATA, "metadata"),
}  # fmt: skip
