"""Introspection, revocation, JWKS and metadata under attack: authentication required, another
client's tokens neither revealed nor revoked, no private or symmetric key material published,
metadata that says exactly what the server does (RFC 7662 §2.1, §4; RFC 7009 §2.1; RFC 7517;
RFC 8414 §2)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import jwt
import pytest
from falcon import testing

from jwtauth.accounts.hashing import SecretChecker
from jwtauth.app import create_app
from jwtauth.cli import keyfolder
from jwtauth.config.settings import Settings
from jwtauth.keys import KeyRing
from tests.authflow import authorize, code_from, redirect_params
from tests.helpers import (
    INTROSPECT,
    ISSUER,
    REVOKE,
    SPA,
    SPA_URI,
    TOKENS,
    assert_clean_error,
    call,
    login,
    pkce_pair,
    token,
    tokens_of,
)

OTHER = ("other", "othersecret")
PRIVATE_MEMBERS = {"d", "p", "q", "dp", "dq", "qi", "oth", "k"}


def introspect(http: testing.TestClient, value: str, **kwargs: Any) -> testing.Result:
    return call(http, INTROSPECT, {"token": value}, **kwargs)


def active(http: testing.TestClient, value: str, **kwargs: Any) -> bool:
    result = introspect(http, value, **kwargs)
    assert result.status_code == 200, result.text
    verdict: bool = result.json["active"]
    return verdict


def spa_tokens(http: testing.TestClient) -> tuple[str, str]:
    verifier, challenge = pkce_pair()
    query = {
        "response_type": "code",
        "client_id": SPA,
        "redirect_uri": SPA_URI,
        "code_challenge": challenge,
        "code_challenge_method": "S256",
    }
    code = code_from(authorize(http, query))
    params = {"grant_type": "authorization_code", "code": code, "code_verifier": verifier}
    return tokens_of(token(http, params, auth=SPA))


# --- introspection -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs",
    [
        {"auth": None},
        {"auth": ("testclient", "wrong")},
        {"auth": ("nobody", "x")},
        {"auth": SPA},  # a public client's id is no credential (RFC 7662 §2.1)
        {"auth": None, "headers": {"Authorization": "Bearer whatever"}},
    ],
)
def test_introspection_requires_a_confidential_client(
    http: testing.TestClient, kwargs: dict[str, Any]
) -> None:
    access, _ = tokens_of(login(http))
    result = introspect(http, access, **kwargs)
    assert_clean_error(result, 401, "invalid_client")
    assert "active" not in result.text


def test_an_access_token_as_the_introspection_credential_is_refused(http: testing.TestClient) -> None:
    access, _ = tokens_of(login(http))
    result = introspect(http, access, auth=None, headers={"Authorization": f"Bearer {access}"})
    assert_clean_error(result, 401, "invalid_client")


def test_another_clients_tokens_look_exactly_like_garbage(http: testing.TestClient) -> None:
    access, refresh = tokens_of(login(http))
    for value in (access, refresh):
        foreign = introspect(http, value, auth=OTHER)
        garbage = introspect(http, "garbage", auth=OTHER)
        assert foreign.status_code == garbage.status_code == 200
        assert foreign.text == garbage.text == '{"active": false}'
        assert foreign.headers["Cache-Control"] == "no-store"
        assert active(http, value)  # still the owner's


@pytest.mark.parametrize("hint", ["access_token", "refresh_token", "id_token", "nonsense", "ACCESS_TOKEN"])
def test_a_lying_hint_changes_no_verdict(http: testing.TestClient, hint: str) -> None:
    access, refresh = tokens_of(login(http))
    assert active(http, access, auth=("testclient", "testpassword"))
    for value in (access, refresh):
        result = call(http, INTROSPECT, {"token": value, "token_type_hint": hint})
        assert result.json["active"] is True
    assert call(http, INTROSPECT, {"token": "x", "token_type_hint": hint}).json == {"active": False}


def test_introspection_reveals_only_the_documented_fields(http: testing.TestClient) -> None:
    access, refresh = tokens_of(login(http))
    expected = {"active", "scope", "client_id", "sub", "aud", "iss", "exp", "iat", "jti", "token_type"}
    for value in (access, refresh):
        body = introspect(http, value).json
        assert set(body) == expected
        assert refresh not in str(body) and "fid" not in body


def test_introspection_writes_nothing(http: testing.TestClient, state: Any) -> None:
    access, refresh = tokens_of(login(http))
    before = state()
    for value in (access, refresh, "garbage", refresh.split(".")[0] + "." + "A" * 43):
        introspect(http, value)
        introspect(http, value, auth=OTHER)
    assert state() == before


# --- revocation ------------------------------------------------------------------------------------


@pytest.mark.parametrize("auth", [None, ("testclient", "wrong"), ("nobody", "x")])
def test_revocation_requires_client_authentication(
    http: testing.TestClient, state: Any, auth: tuple[str, str] | None
) -> None:
    _, refresh = tokens_of(login(http))

    def stored() -> dict[bytes, Any]:  # all but the failure counters (issue 18), which count this
        return {key: value for key, value in state().items() if b"{l:" not in key}

    before = stored()
    assert_clean_error(call(http, REVOKE, {"token": refresh}, auth=auth), 401, "invalid_client")
    assert stored() == before and active(http, refresh)


@pytest.mark.parametrize("which", ["access", "refresh"])
def test_a_confidential_client_cannot_revoke_another_clients_token(
    http: testing.TestClient, which: str
) -> None:
    access, refresh = tokens_of(login(http))
    value = access if which == "access" else refresh
    assert_clean_error(call(http, REVOKE, {"token": value}, auth=OTHER), 400, "unauthorized_client")
    assert active(http, access) and active(http, refresh)
    assert token(http, {"grant_type": "refresh_token", "refresh_token": refresh}).status_code == 200


def test_a_public_client_naming_itself_cannot_revoke_a_confidential_clients_token(
    http: testing.TestClient,
) -> None:
    access, refresh = tokens_of(login(http))
    for value in (access, refresh):
        result = call(http, REVOKE, {"token": value}, auth=SPA)
        assert result.status_code == 200  # nothing to tell an unauthenticated caller ...
    assert active(http, access) and active(http, refresh)  # ... and nothing revoked


def test_a_public_client_revokes_its_own(http: testing.TestClient) -> None:
    _, refresh = spa_tokens(http)
    assert call(http, REVOKE, {"token": refresh}, auth=SPA).status_code == 200
    assert token(http, {"grant_type": "refresh_token", "refresh_token": refresh}, auth=SPA).status_code == 400


@pytest.mark.parametrize("value", ["garbage", "A" * 22 + "." + "A" * 43, "a.b.c", "x" * 9000])
def test_revoking_garbage_is_200_and_writes_nothing(http: testing.TestClient, state: Any, value: str) -> None:
    before = state()
    result = call(http, REVOKE, {"token": value})
    assert result.status_code == 200 and result.text == ""
    assert result.headers["Cache-Control"] == "no-store"
    assert state() == before


def test_a_guessed_secret_of_a_known_family_revokes_nothing(http: testing.TestClient) -> None:
    access, refresh = tokens_of(login(http))
    guess = refresh.split(".")[0] + "." + "B" * 43
    assert call(http, REVOKE, {"token": guess}).status_code == 200
    assert active(http, access) and active(http, refresh)


# --- JWKS ---------------------------------------------------------------------------------------------


@pytest.fixture
def every_alg(tmp_path: Path, sec_settings: Settings, store: Any) -> testing.TestClient:
    """An app whose key folder holds a key of every algorithm, published."""
    directory = tmp_path / "all-keys"
    keyfolder.ensure(directory, "ES256", now=time.time(), retire_after=960)
    for alg in ("RS256", "PS256", "EdDSA"):
        keyfolder.rotate(directory, alg, publish_ahead=300, retire_after=960, now=time.time())
    app = create_app(
        sec_settings, KeyRing(directory, retire_after=960), store, checker=SecretChecker(dummy_log_n=10)
    )
    return testing.TestClient(app)


def test_jwks_holds_public_signature_keys_only(every_alg: testing.TestClient) -> None:
    result = every_alg.simulate_get("/jwks")
    assert result.status_code == 200
    assert result.headers["Content-Type"] == "application/jwk-set+json"
    jwks = result.json
    assert set(jwks) == {"keys"} and len(jwks["keys"]) == 4
    assert {k["alg"] for k in jwks["keys"]} == {"ES256", "RS256", "PS256", "EdDSA"}
    for key in jwks["keys"]:
        assert not PRIVATE_MEMBERS & set(key), key
        assert key["kty"] in {"EC", "RSA", "OKP"} and key["use"] == "sig" and key["kid"]
        jwt.PyJWK(key)  # each one parses as a public key
    kids = [k["kid"] for k in jwks["keys"]]
    assert len(set(kids)) == len(kids)


def test_jwks_is_identical_at_both_paths_and_cacheable(every_alg: testing.TestClient) -> None:
    a, b = every_alg.simulate_get("/jwks"), every_alg.simulate_get("/.well-known/jwks.json")
    assert a.content == b.content
    assert a.headers["Cache-Control"].startswith("public, max-age=")
    assert "Set-Cookie" not in a.headers


@pytest.mark.parametrize(
    "path",
    ["/jwks", "/.well-known/jwks.json", "/healthz", "/readyz", "/.well-known/oauth-authorization-server"],
)
def test_head_answers_like_get_without_a_body(http: testing.TestClient, path: str) -> None:
    """RFC 9110 §9.3.2: a server that supports GET must support HEAD (probes and caches use it)."""
    get, head = http.simulate_get(path), http.simulate_head(path)
    assert head.status_code == get.status_code == 200
    assert head.content == b""
    assert head.headers.get("Content-Type") == get.headers.get("Content-Type")


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "PATCH"])
def test_jwks_and_metadata_refuse_writes_cleanly(http: testing.TestClient, method: str) -> None:
    for path in ("/jwks", "/.well-known/oauth-authorization-server"):
        result = http.simulate_request(method, path)
        assert result.status_code == 405
        assert "GET" in result.headers["Allow"] and "POST" not in result.headers["Allow"]
        assert_clean_error(result, 405, "invalid_request")


# --- metadata says what the server does ------------------------------------------------------------------


@pytest.fixture
def meta(http: testing.TestClient) -> dict[str, Any]:
    result = http.simulate_get("/.well-known/oauth-authorization-server")
    assert result.status_code == 200
    body: dict[str, Any] = result.json
    return body


def test_metadata_issuer_is_the_iss_everywhere(http: testing.TestClient, meta: dict[str, Any]) -> None:
    access, _ = tokens_of(login(http))
    assert jwt.decode(access, options={"verify_signature": False})["iss"] == meta["issuer"] == ISSUER
    location = authorize(http, {"response_type": "code", "client_id": "testclient"}).headers["Location"]
    assert redirect_params(location)["iss"] == meta["issuer"]  # RFC 9207 mix-up defence
    assert meta["authorization_response_iss_parameter_supported"] is True


def test_every_advertised_auth_method_works_and_no_other(
    http: testing.TestClient, meta: dict[str, Any]
) -> None:
    methods = set(meta["token_endpoint_auth_methods_supported"])
    assert {"client_secret_basic", "client_secret_post"} <= methods
    assert token(http, {"grant_type": "client_credentials"}).status_code == 200
    post = {"grant_type": "client_credentials", "client_id": "testclient", "client_secret": "testpassword"}
    assert token(http, post, auth=None).status_code == 200
    # Public clients redeem their codes with client_id alone: that is the "none" method.
    assert "none" in methods
    assert spa_tokens(http)
    # private_key_jwt at every endpoint: tests/test_assertions.py and security/test_assertion_attacks.py.
    assert set(meta["introspection_endpoint_auth_methods_supported"]) == {
        "client_secret_basic",
        "client_secret_post",
        "private_key_jwt",
    }
    assert methods == {"client_secret_basic", "client_secret_post", "private_key_jwt", "none"}
    assert "none" in meta["revocation_endpoint_auth_methods_supported"]


def test_advertised_response_types_and_pkce_methods_are_exact(
    http: testing.TestClient, meta: dict[str, Any]
) -> None:
    assert meta["response_types_supported"] == [
        "code", "token", "id_token", "code token", "code id_token", "id_token token", "code id_token token"
    ]  # fmt: skip
    assert meta["response_modes_supported"] == ["query", "fragment", "form_post"]
    assert meta["code_challenge_methods_supported"] == ["S256"]
    for response_type in ("code  code", "code none", "none"):
        result = http.simulate_get(
            "/authorize", params={"response_type": response_type, "client_id": "testclient"}
        )
        assert redirect_params(result.headers["Location"])["error"] == "unsupported_response_type"


def test_advertised_grants_and_scopes_are_exact(http: testing.TestClient, meta: dict[str, Any]) -> None:
    listed = set(meta["grant_types_supported"])
    assert listed == {
        "authorization_code", "client_credentials", "implicit", "password", "refresh_token",
        "urn:ietf:params:oauth:grant-type:device_code",
    }  # fmt: skip
    for grant in ("urn:ietf:params:oauth:grant-type:jwt-bearer", "device_code"):
        assert_clean_error(token(http, {"grant_type": grant}), 400, "unsupported_grant_type")
    assert meta["scopes_supported"] == ["email", "offline_access", "openid", "profile", "read", "write"]
    assert_clean_error(
        token(http, {"grant_type": "client_credentials", "scope": "admin"}), 400, "invalid_scope"
    )


def test_every_advertised_endpoint_answers_its_method(http: testing.TestClient, meta: dict[str, Any]) -> None:
    posts = {"token_endpoint", "revocation_endpoint", "introspection_endpoint"}
    posts.add("device_authorization_endpoint")
    for member, url in meta.items():
        if not (member.endswith("_endpoint") or member == "jwks_uri"):
            continue
        assert url.startswith(ISSUER + "/"), member
        path = urlsplit(url).path
        if member in posts:
            assert call(http, path, {"token": "x", "grant_type": "client_credentials"}).status_code == 200, (
                member
            )
        elif member == "userinfo_endpoint":  # a protected resource: 401 without a token (RFC 6750)
            assert http.simulate_get(path).status_code == 401, member
        elif member == "pushed_authorization_request_endpoint":  # RFC 9126 §2: POST, 201
            pushed = call(http, path, {"response_type": "code", "redirect_uri": "https://www.example.com"})
            assert pushed.status_code == 201, member
        else:
            assert http.simulate_get(path).status_code in (200, 400), member


def test_metadata_names_no_client_user_or_secret(meta: dict[str, Any], sec_settings: Settings) -> None:
    text = repr(meta)
    for client in sec_settings.clients:
        assert f"'{client.client_id}'" not in text
    for user in sec_settings.users:
        assert user.username not in text
    assert "scrypt" not in text and "testpassword" not in text


def test_the_token_endpoint_url_is_exactly_where_tokens_are(meta: dict[str, Any]) -> None:
    assert urlsplit(meta["token_endpoint"]).path == TOKENS


@pytest.mark.parametrize(
    "headers",
    [
        {"Host": "evil.example"},
        {"X-Forwarded-Host": "evil.example", "X-Forwarded-Proto": "https"},
        {"Forwarded": "host=evil.example;proto=https"},
    ],
)
def test_host_headers_change_no_url_the_server_hands_out(
    http: testing.TestClient, headers: dict[str, str]
) -> None:
    """Every URL comes from the configured issuer, never from the request (host header injection)."""
    meta = http.simulate_get("/.well-known/oauth-authorization-server", headers=headers).json
    assert "evil" not in repr(meta)
    result = call(
        http,
        TOKENS,
        {"grant_type": "password", "username": "testuser@example.com", "password": "testpassword"},
        headers=headers,
    )
    assert jwt.decode(result.json["access_token"], options={"verify_signature": False})["iss"] == ISSUER
    page = http.simulate_get(
        "/authorize", params={"response_type": "code", "client_id": "testclient"}, headers=headers
    )
    assert "evil" not in page.text and "evil" not in page.headers.get("Content-Security-Policy", "")
