"""Issue 18, item 7: Sentinel lookups are authenticated and encrypted like the data connections.

With `rediss+sentinel://` the Sentinel queries went out in plaintext and without the password;
a TLS client below redis-py 6 did not check the server's hostname. The Sentinels now get the
URL's credentials, TLS and its CA/client certificate options (`ssl_ca_certs`, `ssl_certfile`,
`ssl_keyfile` in the query), every TLS connection checks the hostname, the dependency floor
carries that default, and a Sentinel refusing the credentials is named in the error.
"""

from __future__ import annotations

import tomllib
from importlib.metadata import version
from typing import Any

import pytest
import redis
from packaging.version import Version
from redis.sentinel import MasterNotFoundError

from jwtauth.store.connection import StoreURLError, connect
from tests.helpers import ROOT

URL = "rediss+sentinel://app:s3cret@h1:26379,h2:26380/mymaster"
TLS = "?ssl_ca_certs=/etc/ca.pem&ssl_certfile=/etc/client.pem&ssl_keyfile=/etc/client.key"


def sentinels(client: Any) -> list[Any]:
    return list(client.connection_pool.sentinel_manager.sentinels)


def test_sentinels_get_the_credentials_and_tls() -> None:
    found = sentinels(connect(URL + TLS))
    assert len(found) == 2  # h1 and h2: the checks below run for each
    for sentinel in found:
        pool = sentinel.connection_pool
        assert issubclass(pool.connection_class, redis.SSLConnection)
        kwargs = pool.connection_kwargs
        assert (kwargs["username"], kwargs["password"]) == ("app", "s3cret")
        assert kwargs["ssl_ca_certs"] == "/etc/ca.pem"
        assert (kwargs["ssl_certfile"], kwargs["ssl_keyfile"]) == ("/etc/client.pem", "/etc/client.key")
        assert kwargs["ssl_check_hostname"] is True


def test_the_primary_connections_get_the_tls_options() -> None:
    pool = connect(URL + TLS).connection_pool
    assert issubclass(pool.connection_class, redis.SSLConnection)
    assert pool.connection_kwargs["ssl_ca_certs"] == "/etc/ca.pem"
    assert pool.connection_kwargs["ssl_check_hostname"] is True


def test_plain_sentinel_urls_stay_plain_but_authenticated() -> None:
    found = sentinels(connect("redis+sentinel://:pw@h1:26379/mymaster"))
    assert len(found) == 1
    for sentinel in found:
        assert not issubclass(sentinel.connection_pool.connection_class, redis.SSLConnection)
        assert sentinel.connection_pool.connection_kwargs["password"] == "pw"


@pytest.mark.parametrize("query", ["?ssl_ca_certs=/x", "?sslkey=/x", "?ssl_certfile=/a&ssl_certfile=/b"])
def test_tls_options_need_rediss_and_known_names(query: str) -> None:
    url = ("redis+sentinel://h1:26379/mymaster" if "ca" in query else URL) + query
    with pytest.raises(StoreURLError):
        connect(url)


def test_an_authentication_failure_says_so(monkeypatch: pytest.MonkeyPatch) -> None:
    client = connect(URL)
    for sentinel in sentinels(client):

        def refuse(*args: Any, **kwargs: Any) -> Any:
            raise redis.AuthenticationError("invalid username-password pair")

        monkeypatch.setattr(sentinel, "pipeline", refuse)
    with pytest.raises(MasterNotFoundError, match="authentication"):
        client.connection_pool.sentinel_manager.discover_master("mymaster")


def test_the_floor_carries_hostname_checks() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    floor = next(d for d in project["project"]["dependencies"] if d.startswith("redis"))
    floor = floor.split(">=")[1].split(",")[0]  # the floor, without the major-version cap
    assert Version(floor) >= Version("6.2")  # 6.0: ssl_check_hostname on by default
    assert Version(version("redis")) >= Version(floor)
