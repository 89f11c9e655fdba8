"""HTTP tests of the JWK Set and the RFC 8414 metadata."""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import fakeredis
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from falcon import testing

from jwtauth.accounts.hashing import SecretChecker
from jwtauth.app import create_app
from jwtauth.cli import keyfolder
from jwtauth.cli.keyfolder import write_record
from jwtauth.config.settings import load_settings
from jwtauth.keys import KeyRecord, KeyRing, thumbprint
from tests.helpers import FIXTURES, ISSUER, PEPPER, basic

JWKS_PATHS = ("/jwks", "/.well-known/jwks.json")
METADATA_PATHS = ("/.well-known/oauth-authorization-server", "/.well-known/openid-configuration")
PRIVATE_MEMBERS = {"d", "p", "q", "dp", "dq", "qi", "oth", "k"}
CHECKER = SecretChecker()


def add_key(directory: Path, alg: str, private: Any, now: float) -> KeyRecord:
    draft = KeyRecord("", alg, now, now, None, private)
    record = KeyRecord(thumbprint(draft.public_jwk()), alg, now, now, None, private)
    write_record(directory, record)
    return record


@pytest.fixture(scope="module")
def every_alg(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A keys folder with one key of each algorithm (RSA at 2048 bits, to stay fast)."""
    directory = tmp_path_factory.mktemp("keys")
    now = time.time() - 10
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    add_key(directory, "RS256", rsa_key, now)
    add_key(directory, "PS256", rsa.generate_private_key(public_exponent=65537, key_size=2048), now + 1)
    add_key(directory, "EdDSA", keyfolder.generate_private_key("EdDSA"), now + 2)
    add_key(directory, "ES256", keyfolder.generate_private_key("ES256"), now + 3)
    return directory


@pytest.fixture(scope="module")
def http(every_alg: Path) -> testing.TestClient:
    settings = replace(load_settings(FIXTURES, env={}), issuer=ISSUER)
    store = fakeredis.FakeRedis(server=fakeredis.FakeServer())
    app = create_app(settings, KeyRing(every_alg, retire_after=960), store, checker=CHECKER, pepper=PEPPER)
    # Every answer echoes X-Request-ID: one fixed id keeps identical requests' answers identical.
    return testing.TestClient(app, headers={"X-Request-ID": "test-request"})


# --- JWKS -----------------------------------------------------------------------------------


def test_jwks_public_members_only(http: testing.TestClient) -> None:
    result = http.simulate_get("/jwks")
    assert result.status_code == 200
    assert result.headers["Content-Type"].startswith("application/jwk-set+json")
    jwks = result.json
    assert set(jwks) == {"keys"}
    assert sorted(k["alg"] for k in jwks["keys"]) == ["ES256", "EdDSA", "PS256", "RS256"]
    for jwk in jwks["keys"]:
        assert not PRIVATE_MEMBERS & set(jwk), jwk
        assert jwk["use"] == "sig" and jwk["kid"] and jwk["alg"]
        assert jwk["kty"] == {"ES256": "EC", "RS256": "RSA", "PS256": "RSA", "EdDSA": "OKP"}[jwk["alg"]]
        assert jwk["kid"] == thumbprint(jwk)  # RFC 7638
    jwt.PyJWKSet.from_dict(jwks)  # a JOSE library accepts every key


def test_jwks_both_paths_identical(http: testing.TestClient) -> None:
    a, b = (http.simulate_get(p) for p in JWKS_PATHS)
    assert a.status_code == b.status_code == 200
    assert a.content == b.content and a.headers == b.headers
    assert http.simulate_get("/jwks/").content == a.content


def test_jwks_is_cacheable(http: testing.TestClient) -> None:
    result = http.simulate_get("/jwks")
    assert result.headers["Cache-Control"] == "public, max-age=300"
    etag = result.headers["ETag"]
    assert etag.startswith('"') and etag.endswith('"') and len(etag) > 2


@pytest.mark.parametrize(
    "if_none_match",
    ["{etag}", "W/{etag}", '"other", {etag}', '"other",{etag}', "*"],
    ids=["exact", "weak", "list", "list without space", "star"],
)
def test_jwks_304_on_if_none_match(http: testing.TestClient, if_none_match: str) -> None:
    etag = http.simulate_get("/jwks").headers["ETag"]
    result = http.simulate_get("/jwks", headers={"If-None-Match": if_none_match.format(etag=etag)})
    assert result.status_code == 304
    assert result.content == b""
    # RFC 9110 §15.4.5: a 304 carries the ETag and Cache-Control a 200 would have.
    assert result.headers["ETag"] == etag
    assert result.headers["Cache-Control"] == "public, max-age=300"


@pytest.mark.parametrize("if_none_match", ['"other"', "", '"', "W/", "garbage"])
def test_jwks_200_on_other_etags(http: testing.TestClient, if_none_match: str) -> None:
    result = http.simulate_get("/jwks", headers={"If-None-Match": if_none_match})
    assert result.status_code == 200 and result.json["keys"]


def test_etag_changes_with_the_keys(tmp_path: Path) -> None:
    directory = tmp_path / "keys"
    keyfolder.ensure(directory, "ES256", now=time.time(), retire_after=960)
    ring = KeyRing(directory, retire_after=960)
    settings = replace(load_settings(FIXTURES, env={}), issuer=ISSUER)
    app = create_app(settings, ring, fakeredis.FakeRedis(), checker=CHECKER, pepper=PEPPER)
    http = testing.TestClient(app)
    before = http.simulate_get("/jwks")
    keyfolder.rotate(directory, "ES256", now=time.time(), publish_ahead=300, retire_after=960)
    ring.refresh(force=True)
    after = http.simulate_get("/jwks", headers={"If-None-Match": before.headers["ETag"]})
    assert after.status_code == 200
    assert after.headers["ETag"] != before.headers["ETag"]
    assert len(after.json["keys"]) == len(before.json["keys"]) + 1


def test_jwks_with_no_keys_is_an_empty_set(tmp_path: Path) -> None:
    empty = tmp_path / "keys"
    empty.mkdir()
    settings = replace(load_settings(FIXTURES, env={}), issuer=ISSUER)
    ring = KeyRing(empty, retire_after=960)
    app = create_app(settings, ring, fakeredis.FakeRedis(), checker=CHECKER, pepper=PEPPER)
    result = testing.TestClient(app).simulate_get("/jwks")
    assert result.status_code == 200 and result.json == {"keys": []}


# --- metadata --------------------------------------------------------------------------------


def test_metadata_both_paths_identical(http: testing.TestClient) -> None:
    a, b = (http.simulate_get(p) for p in METADATA_PATHS)
    assert a.status_code == b.status_code == 200
    assert a.content == b.content
    assert a.headers["Content-Type"].startswith("application/json")
    assert a.headers["Cache-Control"].startswith("public, max-age=")


def test_metadata_issuer_is_the_tokens_iss(http: testing.TestClient) -> None:
    meta = http.simulate_get(METADATA_PATHS[0]).json
    token = http.simulate_post("/api/v1/tokens", body="grant_type=client_credentials", headers=basic()).json[
        "access_token"
    ]
    assert meta["issuer"] == ISSUER == jwt.decode(token, options={"verify_signature": False})["iss"]
    assert meta["token_endpoint"] == ISSUER + "/api/v1/tokens"
    assert meta["jwks_uri"] == ISSUER + "/jwks"


def test_metadata_required_members(http: testing.TestClient) -> None:
    meta = http.simulate_get(METADATA_PATHS[0]).json
    # RFC 8414 §2: issuer and response_types_supported are REQUIRED.
    assert {"issuer", "response_types_supported", "jwks_uri", "token_endpoint"} <= set(meta)
    assert set(meta["token_endpoint_auth_methods_supported"]) <= {
        "client_secret_basic",
        "client_secret_post",
        "private_key_jwt",  # RFC 7523; tests/test_assertions.py proves it works
        "none",
    }
    assert "client_secret_basic" in meta["token_endpoint_auth_methods_supported"]
    assert meta["scopes_supported"] == ["email", "offline_access", "openid", "profile", "read", "write"]
    assert "plain" not in meta.get("code_challenge_methods_supported", [])


def test_metadata_lists_only_endpoints_that_exist(http: testing.TestClient) -> None:
    meta = http.simulate_get(METADATA_PATHS[0]).json
    urls = {k: v for k, v in meta.items() if k.endswith("_endpoint") or k == "jwks_uri"}
    assert urls
    for member, url in urls.items():
        assert url.startswith(ISSUER + "/"), member
        path = urlsplit(url).path
        method = "POST" if member in ("token_endpoint",) else "GET"
        assert http.simulate_request(method, path).status_code != 404, member


def test_metadata_lists_only_grants_the_token_endpoint_takes(http: testing.TestClient) -> None:
    meta = http.simulate_get(METADATA_PATHS[0]).json
    listed = set(meta["grant_types_supported"])
    assert "client_credentials" in listed
    # `implicit` is a response type of the authorization endpoint, never posted here.
    for grant_type in listed - {"implicit"}:
        result = http.simulate_post("/api/v1/tokens", body=f"grant_type={grant_type}", headers=basic())
        assert result.json.get("error") != "unsupported_grant_type", grant_type
    if "implicit" in listed:
        assert "token" in meta["response_types_supported"]
    for grant_type in {"password", "refresh_token", "authorization_code", "magic"} - listed:
        result = http.simulate_post("/api/v1/tokens", body=f"grant_type={grant_type}", headers=basic())
        assert result.json["error"] == "unsupported_grant_type", grant_type
