"""DPoP attacks (RFC 9449 §11): each fails closed with its error and changes nothing stored.

Against the token endpoint and against a resource server guarded by jwtauth.verify.DPoPAuth.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import falcon
import jwt
import pytest
from falcon import testing
from jwt.utils import base64url_encode

from jwtauth.keys import KeyRing
from jwtauth.verify import DPoPAuth, NonceSource, Verifier
from tests.dpopkit import DPoPKey
from tests.helpers import ISSUER, Clock, assert_clean_error, call

RS = "https://api.example.com"
CC = {"grant_type": "client_credentials"}


def post(http: testing.TestClient, headers: Any) -> testing.Result:
    return call(http, "/api/v1/tokens", CC, headers=headers)


def unsigned(key: DPoPKey, alg: str, clock: Clock, secret: bytes = b"") -> str:
    """Return a proof with alg none (empty signature) or HS256 keyed by `secret`."""
    header = {"typ": "dpop+jwt", "alg": alg, "jwk": key.jwk}
    claims = {"jti": "x", "htm": "POST", "htu": ISSUER + "/api/v1/tokens", "iat": int(clock.now)}
    if alg == "HS256":
        return jwt.encode(claims, secret, algorithm="HS256", headers=header)
    parts = [base64url_encode(json.dumps(p).encode()).decode() for p in (header, claims)]
    return ".".join([*parts, ""])


def bad_proofs(clock: Clock) -> dict[str, Callable[[DPoPKey], Any]]:
    now = clock.now
    return {
        "other URL": lambda k: k.proof(iat=now, htu="https://elsewhere.example/api/v1/tokens"),
        "other method": lambda k: k.proof(iat=now, htm="GET"),
        "other key's signature": lambda k: jwt.encode(
            jwt.decode(k.proof(iat=now), options={"verify_signature": False}),
            DPoPKey().key, algorithm="ES256", headers={"typ": "dpop+jwt", "jwk": k.jwk}),
        "private key in jwk": lambda k: k.proof(iat=now, header={"jwk": {**k.jwk, "d": "AAAA"}}),
        "alg none": lambda k: unsigned(k, "none", clock),
        "alg HS256": lambda k: unsigned(k, "HS256", clock, b"x" * 32),
        "iat in the future": lambda k: k.proof(iat=now + 120),
        "stale iat": lambda k: k.proof(iat=now - 600),
        "oversized": lambda k: k.proof(iat=now, padding="A" * 5000),
        "wrong typ": lambda k: k.proof(iat=now, header={"typ": "JWT"}),
        "two DPoP headers": lambda k: f"{k.proof(iat=now)},{k.proof(iat=now)}",
        "not a JWT": lambda k: "garbage",
    }


@pytest.mark.parametrize("attack", list(bad_proofs(Clock())))
def test_token_endpoint_refuses(
    attack: str, http: testing.TestClient, clock: Clock, state: Callable[[], Any]
) -> None:
    before = state()
    result = post(http, {"DPoP": bad_proofs(clock)[attack](DPoPKey())})
    assert_clean_error(result, 400, "invalid_dpop_proof")
    assert state() == before


def test_replayed_proof_is_refused(http: testing.TestClient, clock: Clock, state: Callable[[], Any]) -> None:
    proof = DPoPKey().proof(iat=clock.now)
    assert post(http, {"DPoP": proof}).status_code == 200
    before = state()
    assert_clean_error(post(http, {"DPoP": proof}), 400, "invalid_dpop_proof")
    assert state() == before


@pytest.mark.parametrize("nonce", [None, "stale", "forged", "non-ascii"])
def test_nonce_missing_stale_or_forged(
    nonce: str | None, make_app: Callable[..., testing.TestClient], clock: Clock, state: Callable[[], Any]
) -> None:
    http, key = make_app(dpop_require_nonce=True), DPoPKey()
    good = post(http, {"DPoP": key.proof(iat=clock.now)}).headers["DPoP-Nonce"]
    # non-ascii: today's slot (public: the server sends it) with a MAC that compare_digest would
    # raise on, which was a 500 before the nonce's MAC had to be ASCII.
    non_ascii = good.partition(".")[0] + "." + "\u00e9" * 43
    sent = {"stale": good, "forged": "6c4c8a7." + "A" * 43, "non-ascii": non_ascii}.get(nonce or "")
    if nonce == "stale":
        clock.now += 1200  # four nonce lifetimes later
    before = state()
    claims = {"nonce": sent} if sent else {}
    result = post(http, {"DPoP": key.proof(iat=clock.now, **claims)})
    assert_clean_error(result, 400, "use_dpop_nonce")
    assert result.headers["DPoP-Nonce"] != sent
    assert state() == before


# --- the resource server side ---------------------------------------------------------------------


class Hello:
    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        resp.media = {"sub": req.context.claims["sub"]}


def resource_server(keyring: KeyRing, clock: Clock, **options: Any) -> testing.TestClient:
    def fetch(url: str, headers: Any = None) -> tuple[bytes, dict[str, str]]:
        return keyring.jwks()[0], {"Cache-Control": "max-age=300"}

    verifier = Verifier(issuer=ISSUER, audience=RS, jwks_uri=ISSUER + "/jwks", fetch=fetch, clock=clock)
    app = falcon.App()
    app.add_route("/hello", Hello())
    app.req_options.strip_url_path_trailing_slash = True
    auth = DPoPAuth(verifier, base_url=RS, clock=clock, **options)
    app.add_middleware(_Guard(auth))
    return testing.TestClient(app)


class _Guard:
    def __init__(self, auth: DPoPAuth) -> None:
        self.auth = auth

    def process_request(self, req: falcon.Request, resp: falcon.Response) -> None:
        req.context.claims = self.auth.authenticate(req)


@pytest.fixture
def bound(http: testing.TestClient, clock: Clock) -> tuple[DPoPKey, str]:
    key = DPoPKey()
    result = post(http, {"DPoP": key.proof(iat=clock.now)})
    assert result.json["token_type"] == "DPoP"
    return key, result.json["access_token"]


def get(rs: testing.TestClient, scheme: str, token: str, proof: str | None) -> testing.Result:
    headers = {"Authorization": f"{scheme} {token}", **({"DPoP": proof} if proof else {})}
    return rs.simulate_get("/hello", headers=headers)


def test_resource_server_accepts_the_bound_token_once(
    keyring: KeyRing, clock: Clock, bound: tuple[DPoPKey, str]
) -> None:
    rs, (key, token) = resource_server(keyring, clock), bound
    proof = key.proof(iat=clock.now, htm="GET", htu=RS + "/hello", token=token)
    assert get(rs, "DPoP", token, proof).status_code == 200
    replay = get(rs, "DPoP", token, proof)
    assert replay.status_code == 401 and 'error="invalid_dpop_proof"' in replay.headers["WWW-Authenticate"]


def rs_attacks(clock: Clock, token: str) -> dict[str, tuple[str, Callable[[DPoPKey], str | None], str]]:
    now, url = clock.now, RS + "/hello"
    return {
        "bound token as Bearer": ("Bearer", lambda k: None, "invalid_token"),
        "no proof": ("DPoP", lambda k: None, "invalid_dpop_proof"),
        "ath of another token": ("DPoP", lambda k: k.proof(iat=now, htm="GET", htu=url, token="a.b.c"),
                                 "invalid_dpop_proof"),
        "other key": ("DPoP", lambda k: DPoPKey().proof(iat=now, htm="GET", htu=url, token=token),
                      "invalid_token"),
        "other URL": ("DPoP", lambda k: k.proof(iat=now, htm="GET", htu=RS + "/other", token=token),
                      "invalid_dpop_proof"),
        "other method": ("DPoP", lambda k: k.proof(iat=now, htm="POST", htu=url, token=token),
                         "invalid_dpop_proof"),
        "stale": ("DPoP", lambda k: k.proof(iat=now - 600, htm="GET", htu=url, token=token),
                  "invalid_dpop_proof"),
    }


@pytest.mark.parametrize("attack", list(rs_attacks(Clock(), "t")))
def test_resource_server_refuses(
    attack: str, keyring: KeyRing, clock: Clock, bound: tuple[DPoPKey, str]
) -> None:
    key, token = bound
    scheme, make_proof, error = rs_attacks(clock, token)[attack]
    result = get(resource_server(keyring, clock), scheme, token, make_proof(key))
    assert result.status_code == 401
    challenge = result.headers["WWW-Authenticate"]
    assert f'error="{error}"' in challenge and 'DPoP algs="ES256 EdDSA PS256 RS256"' in challenge
    assert "Bearer realm=" in challenge  # both schemes offered where both are allowed


def test_resource_server_nonce(keyring: KeyRing, clock: Clock, bound: tuple[DPoPKey, str]) -> None:
    nonces = NonceSource(lambda: [b"rs secret"], clock=clock)
    rs, (key, token) = resource_server(keyring, clock, nonces=nonces, allow_bearer=False), bound
    url = RS + "/hello"
    first = get(rs, "DPoP", token, key.proof(iat=clock.now, htm="GET", htu=url, token=token))
    assert first.status_code == 401 and 'error="use_dpop_nonce"' in first.headers["WWW-Authenticate"]
    assert "Bearer" not in first.headers["WWW-Authenticate"]
    nonce = first.headers["DPoP-Nonce"]
    proof = key.proof(iat=clock.now, htm="GET", htu=url, token=token, nonce=nonce)
    assert get(rs, "DPoP", token, proof).status_code == 200
    forged = key.proof(iat=clock.now, htm="GET", htu=url, token=token, nonce=nonce[:-2] + "AA")
    assert get(rs, "DPoP", token, forged).status_code == 401
