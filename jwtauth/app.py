"""create_app: the only place where settings, keys, store, grants and resources are wired."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from typing import Any

import falcon

from jwtauth.accounts.clients import ClientRegistry
from jwtauth.accounts.hashing import SecretChecker
from jwtauth.accounts.login import Login
from jwtauth.accounts.users import UserDirectory
from jwtauth.config import Settings
from jwtauth.errors import InvalidRequest, OAuthError, ServerError, TemporarilyUnavailable
from jwtauth.grants.authorization_code import AuthorizationCodeGrant
from jwtauth.grants.base import Grant
from jwtauth.grants.client_credentials import ClientCredentialsGrant
from jwtauth.grants.password import PasswordGrant
from jwtauth.grants.refresh_token import RefreshTokenGrant
from jwtauth.keys import KeyRing
from jwtauth.observability import AUTHORIZE, TOKEN, AccessLog, Metrics, MetricsResource, Observer
from jwtauth.resources import paths
from jwtauth.resources.authorize import AuthorizeResource
from jwtauth.resources.client_address import ClientAddress, parse_networks
from jwtauth.resources.discovery import JWKSResource, MetadataResource
from jwtauth.resources.health import HealthResource, ReadyResource
from jwtauth.resources.introspect import IntrospectResource
from jwtauth.resources.revoke import RevokeResource
from jwtauth.resources.token import NO_STORE, TokenResource
from jwtauth.store import CodeStore, FailureLimiter, RefreshStore
from jwtauth.store.connection import STORE_ERRORS, ping, unavailable
from jwtauth.tokens.factory import TokenFactory
from jwtauth.tokens.reader import TokenReader
from jwtauth.web.pages import Pages

log = logging.getLogger("jwtauth")



def _render_oauth_error(req: falcon.Request, resp: falcon.Response, ex: OAuthError, params: Any) -> None:
    """Render every OAuthError the same way: RFC 6749 §5.2 JSON, no-store, its headers."""
    req.context.error = ex.error  # for the access log and the metrics
    if ex.status >= 500 or ex.detail:
        log.warning("%s %s -> %s: %s", req.method, req.path, ex.error, ex.detail or ex.description)
    resp.status = ex.status
    resp.set_headers(NO_STORE)
    resp.set_headers(ex.headers)
    resp.content_type = falcon.MEDIA_JSON
    resp.data = json.dumps(ex.body()).encode()


def _render_store_error(req: falcon.Request, resp: falcon.Response, ex: Exception, params: Any) -> None:
    """Answer 503 temporarily_unavailable for a store outage, never 500; other store errors are bugs."""
    req.context.store_error = True
    if not unavailable(ex):
        _render_unexpected(req, resp, ex, params)
        return
    log.error("store unavailable during %s %s: %s", req.method, req.path, type(ex).__name__)
    _render_oauth_error(req, resp, TemporarilyUnavailable(), params)


def _render_unexpected(req: falcon.Request, resp: falcon.Response, ex: Exception, params: Any) -> None:
    """Log the bug with its traceback; the client sees server_error and nothing internal."""
    log.exception("unexpected error in %s %s", req.method, req.path)
    _render_oauth_error(req, resp, ServerError("internal error"), params)


def _render_http_error(req: falcon.Request, resp: falcon.Response, ex: falcon.HTTPError, params: Any) -> None:
    """Render Falcon's own errors (404, 405, a bad Content-Length) as RFC 6749 §5.2 JSON, no-store."""
    status = ex.status_code
    headers = dict(ex.headers or {})
    if status == 405 and req.path in paths.POST_ONLY:
        # Their on_get only explains the method; Falcon would list GET in Allow (RFC 9110 §10.2.1).
        headers["Allow"] = "POST"
    if status == 405:
        description = f"use {headers.get('Allow', 'another method')}"
    elif status == 404:
        description = "no such endpoint"
    else:  # Falcon's own words (e.g. which header is malformed), never a library traceback
        description = ex.description or str(ex.title).lstrip("0123456789 ")
    kind: type[OAuthError] = InvalidRequest
    if status == 503:
        kind = TemporarilyUnavailable
    elif status >= 500:
        kind = ServerError
    req.context.error = kind.error
    resp.status = status
    resp.set_headers(NO_STORE)
    resp.set_headers(headers)
    resp.content_type = falcon.MEDIA_JSON
    resp.data = json.dumps(kind(description).body()).encode()


def metadata(settings: Settings, grants: dict[str, Grant]) -> dict[str, Any]:
    """Return RFC 8414 metadata listing only what this server actually implements."""
    issuer = settings.issuer
    scopes = sorted({s for c in settings.clients for s in c.scopes})
    return {
        "issuer": issuer,
        "token_endpoint": issuer + paths.TOKEN,
        "jwks_uri": issuer + paths.JWKS[0],
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
        "response_types_supported": ["code", "token"],
        "code_challenge_methods_supported": ["S256"],  # RFC 7636; never plain (RFC 9700 §2.1.1)
        "authorization_response_iss_parameter_supported": True,  # RFC 9207
    }


def create_app(
    settings: Settings,
    keyring: KeyRing,
    store: Any,
    *,
    clock: Callable[[], float] = time.time,
    checker: SecretChecker | None = None,
    metrics: Metrics | None = None,
    access_log: AccessLog | None = None,
) -> falcon.App[falcon.Request, falcon.Response]:
    """Build the WSGI app from validated settings, a key ring and a redis-py client.

    `metrics`: this worker's metrics (a fresh in-memory set if omitted); `access_log`: where
    the one JSON line per request goes (nowhere if omitted; `jwtauth serve` sends it to stdout).
    """
    checker = checker or SecretChecker()
    metrics = metrics or Metrics()
    keyring.on_signer_change(metrics.key_rotated)
    clients = ClientRegistry(settings.clients, checker)
    users = UserDirectory(settings.users, checker)
    tokens = TokenFactory(settings, keyring, clock)
    prefix = settings.redis_prefix
    # Tombstones of revoked families outlive every access token the family issued.
    revoked_ttl = settings.token_horizon
    codes = CodeStore(store, prefix=prefix, access_token_ttl=revoked_ttl)
    refresh = RefreshStore(
        store, prefix=prefix, grace_seconds=settings.refresh_grace_seconds, revoked_ttl=revoked_ttl
    )
    limiter = FailureLimiter(
        store, prefix=prefix, max_failures=settings.max_failures, window_seconds=settings.failure_window
    )
    login = Login(users, limiter)
    grants: dict[str, Grant] = {
        g.grant_type: g
        for g in (
            ClientCredentialsGrant(settings, tokens),
            AuthorizationCodeGrant(settings, tokens, codes, refresh, clock, events=metrics),
            PasswordGrant(settings, tokens, login, refresh, clock),
            RefreshTokenGrant(settings, tokens, refresh, clock, events=metrics),
        )
    }
    reader = TokenReader(settings, keyring, refresh, clock)

    app = falcon.App(
        media_type=falcon.MEDIA_JSON,
        # The observer first: its timing spans the others, its response hook runs last.
        middleware=(
            Observer(metrics, _endpoint_labels(), access_log),
            ClientAddress(parse_networks(settings.trusted_proxies)),
        ),
    )
    app.req_options.strip_url_path_trailing_slash = True
    app.req_options.auto_parse_form_urlencoded = False
    app.resp_options.secure_cookies_by_default = settings.issuer.startswith("https://")
    app.add_error_handler(Exception, _render_unexpected)
    app.add_error_handler(falcon.HTTPError, _render_http_error)
    app.add_error_handler(OAuthError, _render_oauth_error)
    for store_error in STORE_ERRORS:  # redis-py's tree plus RedisClusterException
        app.add_error_handler(store_error, _render_store_error)

    app.add_route(paths.TOKEN, TokenResource(clients, grants))
    authorize = AuthorizeResource(
        settings=settings,
        clients=clients,
        login=login,
        codes=codes,
        tokens=tokens,
        pages=Pages(settings.templates_dir),
        clock=clock,
    )
    app.add_route(paths.AUTHORIZE, authorize)
    app.add_route(paths.REVOKE, RevokeResource(clients, reader, refresh, clock, events=metrics))
    app.add_route(paths.INTROSPECT, IntrospectResource(clients, reader))
    jwks = JWKSResource(keyring, settings.jwks_max_age)
    for path in paths.JWKS:
        app.add_route(path, jwks)
    meta = MetadataResource(metadata(settings, grants), settings.jwks_max_age)
    for path in paths.METADATA:
        app.add_route(path, meta)
    app.add_route(paths.HEALTH, HealthResource())
    app.add_route(paths.READY, ReadyResource(keyring, lambda: ping(store)))
    app.add_route(paths.METRICS, MetricsResource(metrics))
    return app


def _endpoint_labels() -> dict[str, str]:
    """Map every route to the endpoint label of its metrics and access-log lines."""
    labels = {paths.TOKEN: TOKEN, paths.AUTHORIZE: AUTHORIZE, paths.REVOKE: "revoke"}
    labels |= {paths.INTROSPECT: "introspect", paths.METRICS: "metrics"}
    labels |= {paths.HEALTH: "healthz", paths.READY: "readyz"}
    labels |= dict.fromkeys(paths.JWKS, "jwks") | dict.fromkeys(paths.METADATA, "metadata")
    return labels
