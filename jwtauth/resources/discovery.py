"""Public documents: the JWK Set and the RFC 8414 metadata, served from precomputed bytes.

The metadata's scopes are those of the clients in use: computed again after a settings reload.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

import falcon

from jwtauth.accounts.assertions import SIGNING_ALGORITHMS
from jwtauth.accounts.live import Derived, Live
from jwtauth.config.clients import Client
from jwtauth.config.settings import Settings
from jwtauth.grants.base import Grant
from jwtauth.keys import KeyRing
from jwtauth.oidc import responses
from jwtauth.oidc.discovery import oidc_metadata
from jwtauth.resources import paths
from jwtauth.verify.dpop import DPOP_ALGORITHMS


class JWKSResource:
    """GET /jwks: public keys only, cacheable, with an ETag."""

    def __init__(self, keyring: KeyRing, max_age: int) -> None:
        self.keyring = keyring
        self.cache_control = f"public, max-age={max_age}"

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        body, etag = self.keyring.jwks()
        resp.set_header("Cache-Control", self.cache_control)
        resp.set_header("ETag", etag)
        # RFC 9110 §13.1.2: If-None-Match uses the weak comparison, so W/"x" matches "x".
        if_none_match = req.get_header("If-None-Match") or ""
        tags = {t.strip().removeprefix("W/") for t in if_none_match.split(",")}
        if etag in tags or "*" in tags:
            # RFC 9110 §15.4.5: a 304 repeats Cache-Control and ETag, and has no content.
            resp.status = falcon.HTTP_304
            return
        resp.content_type = "application/jwk-set+json"
        resp.data = body

    # RFC 9110 §9.3.2: HEAD is GET without content (Falcon drops the body); caches use it.
    on_head = on_get


class MetadataResource:
    """GET /.well-known/oauth-authorization-server (RFC 8414 §3)."""

    def __init__(
        self, settings: Settings, grants: dict[str, Grant], clients: Live[Client], max_age: int
    ) -> None:
        def body(table: Mapping[str, Client]) -> bytes:
            return json.dumps(metadata(settings, grants, table.values()), indent=2).encode()

        self.body = Derived(body, clients)
        self.cache_control = f"public, max-age={max_age}"

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        resp.set_header("Cache-Control", self.cache_control)
        resp.content_type = falcon.MEDIA_JSON
        resp.data = self.body.get()

    on_head = on_get  # RFC 9110 §9.3.2


# client_secret_jwt is not offered: it needs the plaintext secret, and only its hash is kept.
_SECRET_METHODS = ("client_secret_basic", "client_secret_post")


def metadata(settings: Settings, grants: dict[str, Grant], clients: Iterable[Client]) -> dict[str, Any]:
    """Return RFC 8414 and OpenID Connect Discovery metadata: only what this server implements."""
    issuer = settings.issuer
    scopes = sorted({s for c in clients for s in c.scopes})
    oauth = {
        "issuer": issuer,
        "token_endpoint": issuer + paths.TOKEN,
        "jwks_uri": issuer + paths.JWKS[0],
        # Not a registered name: jwtauth.verify reads it to subscribe to revocations.
        "jwtauth_revocations_uri": issuer + paths.REVOCATIONS,
        "authorization_endpoint": issuer + paths.AUTHORIZE,
        # implicit is a response_type of the authorization endpoint, not a token-endpoint grant.
        "grant_types_supported": sorted({*grants, "implicit"}),
        # "none": public clients identify with client_id alone and must use PKCE (RFC 7636).
        "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "none"],
        "revocation_endpoint": issuer + paths.REVOKE,  # RFC 7009
        # A public client revokes its own tokens with its client_id alone (RFC 7009 §2.1).
        "revocation_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "none"],
        "introspection_endpoint": issuer + paths.INTROSPECT,  # RFC 7662; confidential clients only
        "introspection_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
        "scopes_supported": scopes,
        "response_types_supported": responses.names(),  # OpenID Connect Core §3.2, §3.3 too
        "code_challenge_methods_supported": ["S256"],  # RFC 7636; never plain (RFC 9700 §2.1.1)
        "authorization_response_iss_parameter_supported": True,  # RFC 9207
        "device_authorization_endpoint": issuer + paths.DEVICE_AUTHORIZATION,  # RFC 8628 §4

        "dpop_signing_alg_values_supported": sorted(DPOP_ALGORITHMS),  # RFC 9449 §5.1
        **_client_id_metadata(settings),
        **_key_authentication(),
        # RFC 9126 §5: PAR takes the token endpoint's client authentication.
        "pushed_authorization_request_endpoint": issuer + paths.PAR,
        "require_pushed_authorization_requests": settings.par_required,
    }
    return oauth | oidc_metadata(settings, scopes)


def _key_authentication() -> dict[str, Any]:
    """Return private_key_jwt (RFC 7523 §2.2) beside the secret methods of every endpoint (RFC 8414 §2)."""
    algorithms = list(SIGNING_ALGORITHMS)
    return {
        "token_endpoint_auth_methods_supported": [*_SECRET_METHODS, "private_key_jwt", "none"],
        "token_endpoint_auth_signing_alg_values_supported": algorithms,
        "revocation_endpoint_auth_methods_supported": [*_SECRET_METHODS, "private_key_jwt", "none"],
        "revocation_endpoint_auth_signing_alg_values_supported": algorithms,
        "introspection_endpoint_auth_methods_supported": [*_SECRET_METHODS, "private_key_jwt"],
        "introspection_endpoint_auth_signing_alg_values_supported": algorithms,
    }


def _client_id_metadata(settings: Settings) -> dict[str, Any]:
    """Return the client ID metadata document support flag when it is enabled (draft §5)."""
    return {"client_id_metadata_document_supported": True} if settings.client_id_metadata.enabled else {}
