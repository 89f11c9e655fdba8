"""GET, POST /api/v1/userinfo: OpenID Connect Core §5.3 through jwtauth.oidc.userinfo."""

from __future__ import annotations

import falcon

from jwtauth.errors import BearerError
from jwtauth.oidc.userinfo import UserInfo, bearer_token
from jwtauth.resources.forms import parse_params, read_form
from jwtauth.resources.responses import send_json


class UserInfoResource:
    """The userinfo endpoint: claims as JSON, never cached (Core §5.3.2)."""

    def __init__(self, userinfo: UserInfo) -> None:
        self.userinfo = userinfo

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        # RFC 6750 §2.3: a token in the URL leaks to logs and Referer; refuse rather than ignore.
        if "access_token" in parse_params(req.query_string):
            raise BearerError("send the access token in the Authorization header, not in the URL")
        token = bearer_token(req.get_header("Authorization"), None)
        self._answer(req, resp, token)

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        if "access_token" in parse_params(req.query_string):
            raise BearerError("send the access token in the Authorization header, not in the URL")
        form = read_form(req) if req.content_length else {}
        token = bearer_token(req.get_header("Authorization"), form)
        self._answer(req, resp, token)

    def _answer(self, req: falcon.Request, resp: falcon.Response, token: str) -> None:
        client_id, claims = self.userinfo.answer(token)
        req.context.client_id = client_id  # CORS answers for the token's client's origins
        send_json(resp, claims)
