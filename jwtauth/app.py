"""create_app: the only place where settings, keys, store, grants and resources are wired."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from typing import Any

import falcon
import redis

from jwtauth.clients import ClientRegistry
from jwtauth.config import Settings
from jwtauth.connection import ping
from jwtauth.errors import OAuthError, ServerError, TemporarilyUnavailable
from jwtauth.grants.base import Grant, TokenFactory
from jwtauth.grants.client_credentials import ClientCredentialsGrant
from jwtauth.hashing import SecretChecker
from jwtauth.keys import KeyRing
from jwtauth.resources.discovery import JWKSResource, MetadataResource
from jwtauth.resources.health import HealthResource, ReadyResource
from jwtauth.resources.token import NO_STORE, TokenResource
from jwtauth.users import UserDirectory

log = logging.getLogger("jwtauth")

TOKEN_PATH = "/api/v1/tokens"  # noqa: S105  # a path, not a secret
JWKS_PATHS = ("/jwks", "/.well-known/jwks.json")
METADATA_PATHS = ("/.well-known/oauth-authorization-server", "/.well-known/openid-configuration")


def _render_oauth_error(req: falcon.Request, resp: falcon.Response, ex: OAuthError, params: Any) -> None:
    """Render every OAuthError the same way: RFC 6749 §5.2 JSON, no-store, its headers."""
    if ex.status >= 500 or ex.detail:
        log.warning("%s %s -> %s: %s", req.method, req.path, ex.error, ex.detail or ex.description)
    resp.status = ex.status
    resp.set_headers(NO_STORE)
    resp.set_headers(ex.headers)
    resp.content_type = falcon.MEDIA_JSON
    resp.data = json.dumps(ex.body()).encode()


def _render_store_error(
    req: falcon.Request, resp: falcon.Response, ex: redis.RedisError, params: Any
) -> None:
    """Answer 503 temporarily_unavailable when the store is unreachable, never 500."""
    log.error("store unavailable during %s %s: %s", req.method, req.path, type(ex).__name__)
    _render_oauth_error(req, resp, TemporarilyUnavailable(), params)


def _render_unexpected(req: falcon.Request, resp: falcon.Response, ex: Exception, params: Any) -> None:
    """Log the bug with its traceback; the client sees server_error and nothing internal."""
    if isinstance(ex, falcon.HTTPError):  # Falcon's own 404/405/400: keep them as they are
        raise ex
    log.exception("unexpected error in %s %s", req.method, req.path)
    _render_oauth_error(req, resp, ServerError("internal error"), params)


def metadata(settings: Settings, grants: dict[str, Grant]) -> dict[str, Any]:
    """Return RFC 8414 metadata listing only what this server actually implements."""
    issuer = settings.issuer
    scopes = sorted({s for c in settings.clients for s in c.scopes})
    return {
        "issuer": issuer,
        "token_endpoint": issuer + TOKEN_PATH,
        "jwks_uri": issuer + JWKS_PATHS[0],
        "grant_types_supported": sorted(grants),
        "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
        "scopes_supported": scopes,
        "response_types_supported": [],
    }


def create_app(
    settings: Settings,
    keyring: KeyRing,
    store: Any,
    *,
    clock: Callable[[], float] = time.time,
    checker: SecretChecker | None = None,
) -> falcon.App[falcon.Request, falcon.Response]:
    """Build the WSGI app from validated settings, a key ring and a redis-py client."""
    checker = checker or SecretChecker()
    clients = ClientRegistry(settings.clients, checker)
    UserDirectory(settings.users, checker)
    tokens = TokenFactory(settings, keyring, clock)
    grants: dict[str, Grant] = {g.grant_type: g for g in (ClientCredentialsGrant(settings, tokens),)}

    app = falcon.App(media_type=falcon.MEDIA_JSON)
    app.req_options.strip_url_path_trailing_slash = True
    app.req_options.auto_parse_form_urlencoded = False
    app.resp_options.secure_cookies_by_default = settings.issuer.startswith("https://")
    app.add_error_handler(Exception, _render_unexpected)
    app.add_error_handler(OAuthError, _render_oauth_error)
    app.add_error_handler(redis.ConnectionError, _render_store_error)
    app.add_error_handler(redis.TimeoutError, _render_store_error)

    app.add_route(TOKEN_PATH, TokenResource(clients, grants))
    jwks = JWKSResource(keyring, settings.jwks_max_age)
    for path in JWKS_PATHS:
        app.add_route(path, jwks)
    meta = MetadataResource(metadata(settings, grants), settings.jwks_max_age)
    for path in METADATA_PATHS:
        app.add_route(path, meta)
    app.add_route("/healthz", HealthResource())
    app.add_route("/readyz", ReadyResource(keyring, lambda: ping(store)))
    return app
