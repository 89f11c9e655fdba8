"""Render every error in one place: RFC 6749 §5.2 JSON, no-store, never a library's words.

create_app registers these handlers; resources and grants only raise.
"""

from __future__ import annotations

import logging
from typing import Any

import falcon

from jwtauth.errors import InvalidRequest, OAuthError, ServerError, TemporarilyUnavailable
from jwtauth.resources import paths
from jwtauth.resources.responses import send_json
from jwtauth.store.connection import unavailable

log = logging.getLogger("jwtauth")


def render_oauth_error(req: falcon.Request, resp: falcon.Response, ex: OAuthError, params: Any) -> None:
    """Render every OAuthError the same way: RFC 6749 §5.2 JSON, no-store, its headers."""
    req.context.error = ex.error  # for the access log and the metrics
    if ex.status >= 500 or ex.detail:
        log.warning("%s %s -> %s: %s", req.method, req.path, ex.error, ex.detail or ex.description)
    send_json(resp, ex.body(), status=ex.status, headers=ex.headers)


def render_store_error(req: falcon.Request, resp: falcon.Response, ex: Exception, params: Any) -> None:
    """Answer 503 temporarily_unavailable for a store outage, never 500; other store errors are bugs."""
    req.context.store_error = True
    if not unavailable(ex):
        render_unexpected(req, resp, ex, params)
        return
    log.error("store unavailable during %s %s: %s", req.method, req.path, type(ex).__name__)
    render_oauth_error(req, resp, TemporarilyUnavailable(), params)


def render_unexpected(req: falcon.Request, resp: falcon.Response, ex: Exception, params: Any) -> None:
    """Log the bug with its traceback; the client sees server_error and nothing internal."""
    request_id = getattr(req.context, "request_id", None)
    # The request id ties the traceback (one JSON field under JWTAUTH_LOG_FORMAT=json) to the access line.
    log.exception("unexpected error in %s %s (request %s)", req.method, req.path, request_id,
                  extra={"request_id": request_id})  # fmt: skip
    render_oauth_error(req, resp, ServerError("internal error"), params)


def render_http_error(req: falcon.Request, resp: falcon.Response, ex: falcon.HTTPError, params: Any) -> None:
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
    send_json(resp, kind(description).body(), status=status, headers=headers)
