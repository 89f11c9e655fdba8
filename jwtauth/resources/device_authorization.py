"""POST /api/v1/device_authorization: start a device request (RFC 8628 §3.1, §3.2)."""

from __future__ import annotations

import time
from collections.abc import Callable
from urllib.parse import quote

import falcon

from jwtauth.accounts.clients import ClientRegistry
from jwtauth.config.settings import Settings
from jwtauth.errors import MethodNotAllowed, UnauthorizedClient
from jwtauth.oauth import device
from jwtauth.oauth.scopes import requested_audience, requested_scope
from jwtauth.observability import NO_EVENTS, Events
from jwtauth.resources import paths
from jwtauth.resources.forms import read_form, reject_query
from jwtauth.resources.responses import send_json
from jwtauth.store.device import DeviceStore


class DeviceAuthorizationResource:
    """The device authorization endpoint: client authentication exactly as at the token endpoint."""

    def __init__(
        self,
        settings: Settings,
        clients: ClientRegistry,
        devices: DeviceStore,
        clock: Callable[[], float] = time.time,
        events: Events = NO_EVENTS,
    ) -> None:
        self.settings, self.clients, self.devices = settings, clients, devices
        self.clock, self.events = clock, events
        self.verification_uri = settings.issuer + paths.DEVICE

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        reject_query(req)
        params = read_form(req)
        # RFC 8628 §3.1: a confidential client authenticates as at the token endpoint (RFC 6749
        # §3.2.1); a public client sends its client_id.
        client = self.clients.authenticate(req.get_header("Authorization"), params, req.context.client_addr)
        if device.GRANT_TYPE not in client.grant_types:
            raise UnauthorizedClient("this client may not use the device authorization grant")
        # Fixed here for the life of the request: neither approval nor the poll can change them.
        scope = requested_scope(client, params.get("scope"))
        audience = requested_audience(client, self.settings, params.get("resource"))
        issued = self.devices.issue(
            client_id=client.client_id,
            scope=scope,
            audience=audience,
            now=self.clock(),
            ttl=device.LIFETIME,
            interval=device.INTERVAL,
            new_user_code=device.new_user_code,
        )
        self.events.device_flow("requested")
        user_code = device.shown(issued.user_code)
        send_json(
            resp,
            {
                "device_code": issued.device_code,
                "user_code": user_code,
                "verification_uri": self.verification_uri,
                # §3.3.1: the code in the URI saves typing; the page still asks to confirm.
                "verification_uri_complete": f"{self.verification_uri}?user_code={quote(user_code)}",
                "expires_in": device.LIFETIME,
                "interval": device.INTERVAL,
            },
        )

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        raise MethodNotAllowed("POST", "the device authorization endpoint takes POST (RFC 8628 §3.1)")
