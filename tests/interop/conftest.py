"""One real `jwtauth serve` (demo fixtures, embedded store) shared by the interop modules."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from jwtauth.cli import keyfolder
from tests.support import Server, running_server


@pytest.fixture(scope="package", autouse=True)
def oauthlib_on_loopback() -> Iterator[None]:
    """Let oauthlib talk to the test server over plain http on loopback.

    oauthlib (under requests-oauthlib) refuses http:// URLs unless OAUTHLIB_INSECURE_TRANSPORT is
    set. That is a client-side switch meant for exactly this case, a server on 127.0.0.1, not a
    server workaround: it changes nothing in what the client sends.
    """
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("OAUTHLIB_INSECURE_TRANSPORT", "1")
        yield


@pytest.fixture(scope="package")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """Run `jwtauth serve --config <demo fixtures>` once for the whole interop package."""
    directory = tmp_path_factory.mktemp("interop")
    keyfolder.ensure(directory / "keys", "ES256", now=time.time(), retire_after=960)
    with running_server(keys_dir=directory / "keys", log_dir=directory) as running:
        yield running


@pytest.fixture(scope="package")
def base(server: Server) -> str:
    return server.base


@pytest.fixture(scope="package")
def metadata(base: str) -> dict[str, Any]:
    """Return the server's RFC 8414 metadata: every endpoint a test uses comes from here."""
    body: dict[str, Any] = requests.get(base + "/.well-known/oauth-authorization-server", timeout=5).json()
    return body
