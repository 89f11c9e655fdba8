"""create_app: the only place where settings, keys, store, grants and resources are wired."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

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
from jwtauth.oidc.pairwise import Subjects
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
from jwtauth.resources.discovery import JWKSResource, MetadataResource
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
from jwtauth.store.pepper import Pepper, required_pepper
from jwtauth.store.revocations import RevocationIndex
from jwtauth.store.sessions import SessionMarks
from jwtauth.tokens.factory import TokenFactory
from jwtauth.tokens.reader import TokenReader
from jwtauth.web.pages import Pages

if TYPE_CHECKING:
    from opentelemetry.trace import Tracer


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
    pepper: Pepper  # keys/'s server secret: every digest, sealed value and derived MAC key


def _stores(
    settings: Settings, store: Any, limiter: FailureLimiter, subjects: Subjects, pepper: Pepper
) -> _Stores:
    prefix = settings.redis_prefix
    # Tombstones of revoked families outlive every access token the family issued.
    revoked_ttl = settings.token_horizon
    published = RevocationIndex(
        store, issuer=settings.issuer, prefix=prefix, horizon=revoked_ttl, aliases=subjects.access_subjects
    )
    return _Stores(
        codes=CodeStore(store, pepper=pepper, prefix=prefix, access_token_ttl=revoked_ttl),
        refresh=RefreshStore(
            store, pepper=pepper, prefix=prefix, grace_seconds=settings.refresh_grace_seconds,
            revoked_ttl=revoked_ttl, revocations=published,
        ),
        limiter=limiter,
        sessions=SessionMarks(store, pepper=pepper, prefix=prefix, session_ttl=settings.session_ttl),
        devices=DeviceStore(store, pepper=pepper, prefix=prefix, redeemed_ttl=revoked_ttl),
        pushed=PushedRequests(store, pepper=pepper, prefix=prefix),
        revocations=published,
        pepper=pepper,
    )


def _falcon_app(
    settings: Settings,
    clients: ClientRegistry,
    metrics: Metrics,
    access_log: AccessLog | None,
    audit: Audit,
    watch: tuple[Any, ...],
    first: tuple[Any, ...] = (),
) -> falcon.App[Any, Any]:
    """Return an empty app with the middleware, the request options and every error handler."""
    app = falcon.App(
        media_type=falcon.MEDIA_JSON,
        # The observer first (after the tracing span that encloses it, when there is one): its
        # timing spans the others, its response hook runs last.
        middleware=(
            *first,
            Observer(metrics, paths.LABELS, access_log),
            ClientAddress(parse_networks(settings.trusted_proxies)),
            # Before CORS: a preflight completes there, and must see the clients of a reload.
            *watch,
            CORS(clients),
            HeaderLimit(),
            audit,  # after the observer: its lines carry the request id the observer made
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
    settings: Settings, pepper: Pepper, store: Any, clock: Callable[[], float], path: str = paths.TOKEN
) -> TokenEndpointDPoP:
    """Return the DPoP proof checks (RFC 9449 §4.3) of the token (or PAR, §10.1) endpoint."""
    return TokenEndpointDPoP(
        settings,
        htu=settings.issuer + path,
        nonces=key_nonces(pepper, settings, clock),
        markers=proof_markers(store, prefix=settings.redis_prefix),
        clock=clock,
    )


def _browser_sessions(
    settings: Settings, keyring: KeyRing, state: _Stores, subjects: Subjects
) -> BrowserSessions:
    """Return the SSO sessions: cookies MACed under a pepper-derived key, Redis marks."""
    codec = SessionCodec(state.pepper)
    hints = IdTokenHints(settings.issuer, keyring, subjects)
    return BrowserSessions(codec, state.sessions, hints, settings.session_ttl)


def _add_browser_pages(
    app: falcon.App[Any, Any],
    settings: Settings,
    keyring: KeyRing,
    state: _Stores,
    parts: tuple[ClientRegistry, Login, FrontChannel, Subjects],
    metrics: Metrics,
    clock: Callable[[], float],
) -> BrowserSessions:
    """Route the pages a browser visits: /authorize (sign-in, consent, SSO) and /logout.

    Return their BrowserSessions: /device recognizes the same sessions.
    """
    clients, login, front, subjects = parts
    pages = Pages(settings.templates_dir)
    sessions = _browser_sessions(settings, keyring, state, subjects)
    authorize = AuthorizeResource(
        settings=settings, clients=clients, login=login, front=front, pages=pages, sessions=sessions,
        pushed=state.pushed, clock=clock,
    )  # fmt: skip
    app.add_route(paths.AUTHORIZE, authorize)
    backchannel = BackChannel(settings.issuer, keyring, metrics, subjects=subjects)
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
    state: tuple[ClientRegistry, RevocationIndex],
    clock: Callable[[], float],
) -> None:
    """Route the public documents (JWKS, metadata, revocations) and the health checks."""
    clients, revocations = state
    app.add_route(paths.REVOCATIONS, RevocationsResource(
        issuer=settings.issuer, keyring=keyring, index=revocations,
        max_age=settings.revocations_max_age, clock=clock,
    ))  # fmt: skip
    jwks = JWKSResource(keyring, settings.jwks_max_age)
    meta = MetadataResource(settings, grants, clients, settings.jwks_max_age)
    for path, resource in [*((p, jwks) for p in paths.JWKS), *((p, meta) for p in paths.METADATA)]:
        app.add_route(path, resource)
    app.add_route(paths.HEALTH, HealthResource())
    app.add_route(paths.READY, ReadyResource(keyring, lambda: ping(store)))
    app.add_route(paths.READY_STORE, StoreHealthResource(lambda: ping(store)))


def _accounts(
    settings: Settings, store: Any, checker: SecretChecker, clock: Callable[[], float], pepper: Pepper
) -> tuple[FailureLimiter, ClientRegistry, UserDirectory, Subjects]:
    """Return the failure counters, the clients and users in use, and the `sub` each client sees.

    A reload swaps the clients and users in their registries; everything built from them
    (subjects, CORS, introspection, discovery) reads the registries, never a copy from start.
    """
    limiter = FailureLimiter(
        store, pepper=pepper, prefix=settings.redis_prefix, max_failures=settings.max_failures,
        window_seconds=settings.failure_window,
    )  # fmt: skip
    gate = ClientAuthGate(limiter, settings.client_auth_failures, clock)
    clients = ClientRegistry(
        settings.clients, checker, _documents(settings, store, clock), _assertions(settings, store, clock),
        gate=gate, clock=clock,
    )  # fmt: skip
    users = UserDirectory(settings.users, checker)
    # OpenID Connect Core §8: public or pairwise, per client.
    return limiter, clients, users, Subjects(clients, users, settings.pairwise_salt)


def _tracing(tracer: Tracer | None, store: Any) -> tuple[tuple[Any, ...], Any]:
    """Return the request-span middleware and the traced store (nothing of OpenTelemetry without a tracer)."""
    if tracer is None:
        return (), store
    from jwtauth.resources.tracing import RequestSpans
    from jwtauth.store.traced import TracedStore

    return (RequestSpans(tracer, paths.LABELS),), TracedStore(store, tracer)


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
    pepper: Pepper | None = None,
    tracer: Tracer | None = None,
) -> falcon.App[falcon.Request, falcon.Response]:
    """Build the WSGI app from validated settings, a key ring and a redis-py client.

    `metrics`: this worker's metrics (a fresh in-memory set if omitted); `access_log`: where
    the one JSON line per request goes (nowhere if omitted; `jwtauth serve` sends it to stdout);
    `audit_log`: where the audit events go (resources/audit.py; `jwtauth serve`: stdout too);
    `reload_settings`: loads the settings file again, to swap in its clients and users when
    the file changes (accounts/reload.py; nothing is watched without it); `pepper`: the server
    secret (jwtauth.store.pepper), by default the key ring's; `tracer`: an OpenTelemetry tracer
    for a span per request and per store round trip (cli/telemetry.py).
    """
    checker, metrics = checker or SecretChecker(), metrics or Metrics()
    spans, store = _tracing(tracer, store)
    audit = Audit(audit_log, clock, beside_access=audit_log is not None and audit_log == access_log)
    events = EventSinks(metrics, audit)
    keyring.on_signer_change(metrics.key_rotated)
    keyring.on_signer_change(audit.key_rotated)
    chosen = required_pepper(pepper or keyring.pepper, keyring.directory)
    limiter, clients, users, subjects = _accounts(settings, store, checker, clock, chosen)
    state = _stores(settings, store, limiter, subjects, chosen)
    limits = Limits(settings.max_failures, settings.client_max_failures, settings.known_device_ttl)
    login = Login(users, state.limiter, limits)
    tokens = TokenFactory(settings, keyring, clock, subjects=subjects, users=users)
    id_tokens = IdTokens(settings, keyring, users, subjects, clock)
    grants = _grants(settings, tokens, state, login, id_tokens, clock, events, users)
    reader = TokenReader(
        settings, keyring, state.refresh, clients=clients, users=users, subjects=subjects, clock=clock
    )

    watch = _reload(settings, reload_settings, clients, users, audit)
    app = _falcon_app(settings, clients, metrics, access_log, audit, watch, first=spans)
    token_dpop = _token_dpop(settings, state.pepper, store, clock)
    app.add_route(paths.TOKEN, TokenResource(clients, grants, token_dpop))
    par_dpop = _token_dpop(settings, state.pepper, store, clock, path=paths.PAR)
    app.add_route(paths.PAR, PushedAuthorizationResource(settings, clients, state.pushed, par_dpop, clock))
    front = FrontChannel(settings, state.codes, tokens, id_tokens, state.refresh, state.sessions)
    sessions = _add_browser_pages(
        app, settings, keyring, state, (clients, login, front, subjects), metrics, clock
    )
    app.add_route(paths.REVOKE, RevokeResource(clients, reader, state.refresh, clock, events=events))
    app.add_route(paths.INTROSPECT, IntrospectResource(clients, reader))
    app.add_route(paths.USERINFO, UserInfoResource(UserInfo(reader, users, subjects)))
    _add_documents(app, settings, keyring, grants, store, (clients, state.revocations), clock)
    _add_device_routes(app, settings, store, (clients, login, sessions), state, clock, events)
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
    state: _Stores,
    clock: Callable[[], float],
    events: Events,
) -> None:
    """Route the device flow's two endpoints (RFC 8628 §3.1, §3.3); /device shares /authorize's sessions."""
    clients, login, sessions = parts
    limiter, devices = state.limiter, state.devices
    overall = FailureLimiter(
        store,
        pepper=state.pepper,
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
