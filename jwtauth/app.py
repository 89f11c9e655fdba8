"""create_app: the only place where settings, keys, store, grants and resources are wired."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import falcon

from jwtauth.accounts.assertions import AssertionChecker
from jwtauth.accounts.client_documents import ClientDocuments
from jwtauth.accounts.client_keys import ClientKeys, jwks_fetcher
from jwtauth.accounts.client_limits import ClientAuthGate
from jwtauth.accounts.clients import ClientRegistry
from jwtauth.accounts.document_fetch import DocumentFetcher
from jwtauth.accounts.hashing import SecretChecker
from jwtauth.accounts.login import Limits, Login
from jwtauth.accounts.reload import AccountsReload
from jwtauth.accounts.user_codes import GLOBAL_FACTOR, UserCodeGate
from jwtauth.accounts.users import UserDirectory
from jwtauth.config.settings import Settings, parse_networks
from jwtauth.errors import OAuthError
from jwtauth.grants.authorization_code import AuthorizationCodeGrant
from jwtauth.grants.base import Grant
from jwtauth.grants.client_credentials import ClientCredentialsGrant
from jwtauth.grants.device_code import DeviceCodeGrant
from jwtauth.grants.front_channel import FrontChannel
from jwtauth.grants.password import PasswordGrant
from jwtauth.grants.refresh_token import RefreshTokenGrant
from jwtauth.keys import KeyRing
from jwtauth.oauth.dpop import TokenEndpointDPoP, key_nonces
from jwtauth.observability import (
    AccessLog,
    Events,
    EventSinks,
    Metrics,
    Observer,
    WorkerMetrics,
)
from jwtauth.oidc.backchannel import BackChannel
from jwtauth.oidc.hint import IdTokenHints
from jwtauth.oidc.idtoken import IdTokens
from jwtauth.oidc.logout import SessionEnder
from jwtauth.oidc.pairwise import subjects_of
from jwtauth.oidc.session import SessionCodec
from jwtauth.oidc.sso import BrowserSessions
from jwtauth.oidc.userinfo import UserInfo
from jwtauth.resources import paths
from jwtauth.resources.audit import Audit
from jwtauth.resources.authorize import AuthorizeResource
from jwtauth.resources.client_address import ClientAddress
from jwtauth.resources.cors import CORS
from jwtauth.resources.device import DeviceResource
from jwtauth.resources.device_authorization import DeviceAuthorizationResource
from jwtauth.resources.discovery import JWKSResource, MetadataResource, metadata
from jwtauth.resources.errors import (
    render_http_error,
    render_oauth_error,
    render_store_error,
    render_unexpected,
)
from jwtauth.resources.header_limit import HeaderLimit
from jwtauth.resources.health import HealthResource, ReadyResource, StoreHealthResource
from jwtauth.resources.introspect import IntrospectResource
from jwtauth.resources.logout import LogoutResource
from jwtauth.resources.metrics import MetricsResource
from jwtauth.resources.par import PushedAuthorizationResource
from jwtauth.resources.revocations import RevocationsResource
from jwtauth.resources.revoke import RevokeResource
from jwtauth.resources.token import TokenResource
from jwtauth.resources.userinfo import UserInfoResource
from jwtauth.store import CodeStore, FailureLimiter, RefreshStore
from jwtauth.store.assertions import assertion_markers
from jwtauth.store.connection import STORE_ERRORS, ping
from jwtauth.store.device import DeviceStore
from jwtauth.store.documents import DocumentCache
from jwtauth.store.dpop import proof_markers
from jwtauth.store.par import PushedRequests
from jwtauth.store.revocations import RevocationIndex
from jwtauth.store.sessions import SessionMarks
from jwtauth.tokens.factory import TokenFactory
from jwtauth.tokens.reader import TokenReader
from jwtauth.web.pages import Pages


@dataclass(frozen=True)
class _Stores:
    """The Redis-backed state of one app: codes, families, counters, sessions, device and pushed requests."""

    codes: CodeStore
    refresh: RefreshStore
    limiter: FailureLimiter
    sessions: SessionMarks
    devices: DeviceStore
    pushed: PushedRequests
    revocations: RevocationIndex


def _stores(settings: Settings, store: Any) -> _Stores:
    prefix = settings.redis_prefix
    # Tombstones of revoked families outlive every access token the family issued.
    revoked_ttl = settings.token_horizon
    published = RevocationIndex(
        store, issuer=settings.issuer, prefix=prefix, horizon=revoked_ttl,
        aliases=subjects_of(settings).access_subjects,
    )  # fmt: skip
    return _Stores(
        codes=CodeStore(store, prefix=prefix, access_token_ttl=revoked_ttl),
        refresh=RefreshStore(
            store, prefix=prefix, grace_seconds=settings.refresh_grace_seconds, revoked_ttl=revoked_ttl,
            revocations=published,
        ),
        limiter=FailureLimiter(
            store, prefix=prefix, max_failures=settings.max_failures, window_seconds=settings.failure_window
        ),
        sessions=SessionMarks(store, prefix=prefix, session_ttl=settings.session_ttl),
        devices=DeviceStore(store, prefix=prefix, redeemed_ttl=revoked_ttl),
        pushed=PushedRequests(store, prefix=prefix),
        revocations=published,
    )


def _falcon_app(
    settings: Settings, metrics: Metrics, access_log: AccessLog | None, audit: Audit, *more: Any
) -> falcon.App[Any, Any]:
    """Return an empty app with the middleware, the request options and every error handler."""
    app = falcon.App(
        media_type=falcon.MEDIA_JSON,
        # The observer first: its timing spans the others, its response hook runs last.
        middleware=(
            Observer(metrics, paths.LABELS, access_log),
            ClientAddress(parse_networks(settings.trusted_proxies)),
            CORS(settings.clients),
            HeaderLimit(),
            audit,  # after the observer: its lines carry the request id the observer made
            *more,
        ),
    )
    app.req_options.strip_url_path_trailing_slash = True
    app.req_options.auto_parse_form_urlencoded = False
    app.resp_options.secure_cookies_by_default = settings.issuer.startswith("https://")
    app.add_error_handler(Exception, render_unexpected)
    app.add_error_handler(falcon.HTTPError, render_http_error)
    app.add_error_handler(OAuthError, render_oauth_error)
    for store_error in STORE_ERRORS:  # redis-py's tree plus RedisClusterException
        app.add_error_handler(store_error, render_store_error)
    return app


def _grants(
    settings: Settings,
    tokens: TokenFactory,
    state: _Stores,
    login: Login,
    id_tokens: IdTokens,
    clock: Callable[[], float],
    events: Events,
    users: UserDirectory,
) -> dict[str, Grant]:
    """Return the token endpoint's registry: grant_type -> handler (RFC 6749 §4)."""
    codes, refresh = state.codes, state.refresh
    handlers: tuple[Grant, ...] = (
        ClientCredentialsGrant(settings, tokens),
        AuthorizationCodeGrant(
            settings, tokens, codes, refresh, clock,
            events=events, id_tokens=id_tokens, sessions=state.sessions,
        ),
        PasswordGrant(settings, tokens, login, refresh, clock),
        RefreshTokenGrant(
            settings, tokens, refresh, clock, events=events, id_tokens=id_tokens, subjects=users
        ),
        DeviceCodeGrant(settings, tokens, state.devices, refresh, clock, events=events, id_tokens=id_tokens),
    )
    return {g.grant_type: g for g in handlers}


def _token_dpop(
    settings: Settings, keyring: KeyRing, store: Any, clock: Callable[[], float], path: str = paths.TOKEN
) -> TokenEndpointDPoP:
    """Return the DPoP proof checks (RFC 9449 §4.3) of the token (or PAR, §10.1) endpoint."""
    return TokenEndpointDPoP(
        settings,
        htu=settings.issuer + path,
        nonces=key_nonces(keyring, settings, clock),
        markers=proof_markers(store, prefix=settings.redis_prefix),
        clock=clock,
    )


def _browser_sessions(settings: Settings, keyring: KeyRing, state: _Stores) -> BrowserSessions:
    """Return the SSO sessions: cookies signed with keys derived from the key ring's, Redis marks."""
    codec = SessionCodec(keyring.signer, keyring.published)
    hints = IdTokenHints(settings.issuer, keyring, subjects_of(settings))
    return BrowserSessions(codec, state.sessions, hints, settings.session_ttl)


def _add_browser_pages(
    app: falcon.App[Any, Any],
    settings: Settings,
    keyring: KeyRing,
    state: _Stores,
    parts: tuple[ClientRegistry, Login, FrontChannel],
    metrics: Metrics,
    clock: Callable[[], float],
) -> BrowserSessions:
    """Route the pages a browser visits: /authorize (sign-in, consent, SSO) and /logout.

    Return their BrowserSessions: /device recognizes the same sessions.
    """
    clients, login, front = parts
    pages = Pages(settings.templates_dir)
    sessions = _browser_sessions(settings, keyring, state)
    authorize = AuthorizeResource(
        settings=settings, clients=clients, login=login, front=front, pages=pages, sessions=sessions,
        pushed=state.pushed, clock=clock,
    )  # fmt: skip
    app.add_route(paths.AUTHORIZE, authorize)
    backchannel = BackChannel(settings.issuer, keyring, metrics, subjects=subjects_of(settings))
    ender = SessionEnder(state.sessions, state.refresh, clients, backchannel)
    logout = LogoutResource(
        issuer=settings.issuer, clients=clients, hints=sessions.hints, sessions=sessions, ender=ender,
        pages=pages, clock=clock,
    )  # fmt: skip
    app.add_route(paths.LOGOUT, logout)
    return sessions


def _add_documents(
    app: falcon.App[Any, Any],
    settings: Settings,
    keyring: KeyRing,
    grants: dict[str, Grant],
    store: Any,
    revocations: Any,
    clock: Callable[[], float],
) -> None:
    """Route the public documents (JWKS, metadata, revocations) and the health checks."""
    app.add_route(paths.REVOCATIONS, RevocationsResource(
        issuer=settings.issuer, keyring=keyring, index=revocations,
        max_age=settings.revocations_max_age, clock=clock,
    ))  # fmt: skip
    jwks = JWKSResource(keyring, settings.jwks_max_age)
    meta = MetadataResource(metadata(settings, grants), settings.jwks_max_age)
    for path, resource in [*((p, jwks) for p in paths.JWKS), *((p, meta) for p in paths.METADATA)]:
        app.add_route(path, resource)
    app.add_route(paths.HEALTH, HealthResource())
    app.add_route(paths.READY, ReadyResource(keyring, lambda: ping(store)))
    app.add_route(paths.READY_STORE, StoreHealthResource(lambda: ping(store)))


def create_app(
    settings: Settings,
    keyring: KeyRing,
    store: Any,
    *,
    clock: Callable[[], float] = time.time,
    checker: SecretChecker | None = None,
    metrics: Metrics | None = None,
    access_log: AccessLog | None = None,
    audit_log: AccessLog | None = None,
    reload_settings: Callable[[], Settings] | None = None,
) -> falcon.App[falcon.Request, falcon.Response]:
    """Build the WSGI app from validated settings, a key ring and a redis-py client.

    `metrics`: this worker's metrics (a fresh in-memory set if omitted); `access_log`: where
    the one JSON line per request goes (nowhere if omitted; `jwtauth serve` sends it to stdout);
    `audit_log`: where the audit events go (resources/audit.py; `jwtauth serve`: stdout too);
    `reload_settings`: loads the settings file again, to swap in its clients and users when
    the file changes (accounts/reload.py; nothing is watched without it).
    """
    checker = checker or SecretChecker()
    metrics = metrics or Metrics()
    audit = Audit(audit_log, clock, beside_access=audit_log is not None and audit_log == access_log)
    events = EventSinks(metrics, audit)
    keyring.on_signer_change(metrics.key_rotated)
    keyring.on_signer_change(audit.key_rotated)
    state = _stores(settings, store)
    gate = ClientAuthGate(state.limiter, settings.client_auth_failures, clock)
    clients = ClientRegistry(
        settings.clients,
        checker,
        _documents(settings, store, clock),
        _assertions(settings, store, clock),
        gate=gate,
        clock=clock,
    )
    users = UserDirectory(settings.users, checker)
    limits = Limits(settings.max_failures, settings.client_max_failures, settings.known_device_ttl)
    login = Login(users, state.limiter, limits)
    subjects = subjects_of(settings)  # OpenID Connect Core §8: public or pairwise, per client
    tokens = TokenFactory(settings, keyring, clock, subjects=subjects)
    id_tokens = IdTokens(settings, keyring, users, clock, subjects)
    grants = _grants(settings, tokens, state, login, id_tokens, clock, events, users)
    reader = TokenReader(settings, keyring, state.refresh, clock)

    watch = _reload(settings, reload_settings, clients, users, audit)
    app = _falcon_app(settings, metrics, access_log, audit, *watch)
    app.add_route(paths.TOKEN, TokenResource(clients, grants, _token_dpop(settings, keyring, store, clock)))
    par_dpop = _token_dpop(settings, keyring, store, clock, path=paths.PAR)
    app.add_route(paths.PAR, PushedAuthorizationResource(settings, clients, state.pushed, par_dpop, clock))
    front = FrontChannel(settings, state.codes, tokens, id_tokens)
    sessions = _add_browser_pages(app, settings, keyring, state, (clients, login, front), metrics, clock)
    app.add_route(paths.REVOKE, RevokeResource(clients, reader, state.refresh, clock, events=events))
    app.add_route(paths.INTROSPECT, IntrospectResource(clients, reader))
    app.add_route(paths.USERINFO, UserInfoResource(UserInfo(reader, users, subjects)))
    _add_documents(app, settings, keyring, grants, store, state.revocations, clock)
    _add_device_routes(
        app, settings, store, (clients, login, sessions), state.limiter, state.devices, clock, events
    )
    return app


def create_management_app(
    keyring: KeyRing, store: Any, metrics: Metrics | WorkerMetrics, server_metrics: str | None = None
) -> falcon.App[Any, Any]:
    """Build the management listener's app: /metrics and the health checks, never the public API.

    `jwtauth serve --metrics-port` serves it on its own port (as Keycloak and Hydra do), so
    /metrics is never reachable through the public listener. `server_metrics`: a loopback URL
    of the HTTP server's own Prometheus text (granian's), appended to every scrape.
    """
    app = falcon.App(media_type=falcon.MEDIA_JSON)
    app.add_error_handler(Exception, render_unexpected)
    app.add_error_handler(falcon.HTTPError, render_http_error)
    app.add_route(paths.METRICS, MetricsResource(metrics, lambda: ping(store), server_metrics))
    app.add_route(paths.HEALTH, HealthResource())
    app.add_route(paths.READY, ReadyResource(keyring, lambda: ping(store)))
    app.add_route(paths.READY_STORE, StoreHealthResource(lambda: ping(store)))
    return app


def _add_device_routes(
    app: falcon.App[falcon.Request, falcon.Response],
    settings: Settings,
    store: Any,
    parts: tuple[ClientRegistry, Login, BrowserSessions],
    limiter: FailureLimiter,
    devices: DeviceStore,
    clock: Callable[[], float],
    events: Events,
) -> None:
    """Route the device flow's two endpoints (RFC 8628 §3.1, §3.3); /device shares /authorize's sessions."""
    clients, login, sessions = parts
    overall = FailureLimiter(
        store,
        prefix=settings.redis_prefix,
        max_failures=settings.max_failures * GLOBAL_FACTOR,
        window_seconds=settings.failure_window,
    )
    gate = UserCodeGate(limiter, overall)
    app.add_route(
        paths.DEVICE_AUTHORIZATION,
        DeviceAuthorizationResource(settings, clients, devices, clock, events=events),
    )
    page = DeviceResource(
        issuer=settings.issuer, clients=clients, login=login, gate=gate, devices=devices,
        pages=Pages(settings.templates_dir), sessions=sessions, clock=clock, events=events,
    )  # fmt: skip
    app.add_route(paths.DEVICE, page)


def _reload(
    settings: Settings,
    load: Callable[[], Settings] | None,
    clients: ClientRegistry,
    users: UserDirectory,
    audit: Audit,
) -> tuple[AccountsReload, ...]:
    """Return the middleware that swaps in changed clients and users, if a file is to be watched."""
    if load is None or not Path(settings.source).is_file():
        return ()
    return (AccountsReload(settings, load, clients, users, audit=audit.write),)


def _documents(settings: Settings, store: Any, clock: Callable[[], float]) -> ClientDocuments | None:
    """Return the resolver of URL client IDs when [client_id_metadata] enables them."""
    options = settings.client_id_metadata
    if not options.enabled:
        return None
    fetcher = DocumentFetcher(allow_insecure_loopback=options.allow_insecure_loopback)
    cache = DocumentCache(store, prefix=settings.redis_prefix)
    return ClientDocuments(options, settings.audience, cache, fetcher, clock)


def _assertions(settings: Settings, store: Any, clock: Callable[[], float]) -> AssertionChecker:
    """Return the private_key_jwt checks (RFC 7523): registered keys, jti spent once in Redis."""
    fetcher = jwks_fetcher(allow_insecure_loopback=settings.jwks_insecure_loopback)
    return AssertionChecker(
        issuer=settings.issuer,
        token_endpoint=settings.issuer + paths.TOKEN,
        accept_token_endpoint_audience=settings.accept_token_endpoint_audience,
        keys=ClientKeys(fetcher, clock),
        markers=assertion_markers(store, prefix=settings.redis_prefix),
        clock=clock,
    )
