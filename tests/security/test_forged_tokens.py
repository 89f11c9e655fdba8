"""Forged and bent access tokens, at introspection AND in jwtauth.verify: alg none, HMAC keyed with
the public key, kid games, key material in the header, psychic signatures, claim and type
confusion, malformed and huge tokens (RFC 8725, RFC 9068 §4, RFC 7515 §4.1.11).

Each forgery runs against every signing algorithm we support. A positive control per algorithm
proves the harness accepts a genuine token, so the refusals below are not vacuous."""

from __future__ import annotations

import base64
import dataclasses
import datetime
import hashlib
import hmac
import json
import secrets
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import fakeredis
import jwt
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.x509.oid import NameOID
from falcon import testing

from jwtauth.accounts.hashing import SecretChecker
from jwtauth.app import create_app
from jwtauth.cli import keyfolder
from jwtauth.config.settings import load_settings
from jwtauth.keys import KeyRecord, KeyRing
from jwtauth.verify import InvalidToken, Verifier
from tests.helpers import API, FIXTURES, INTROSPECT, ISSUER, Clock, call, suite_settings, token

ALGS = ("ES256", "RS256", "EdDSA")
# The order n of P-256: r = n is the other face of the psychic signature (r mod n == 0).
P256_N = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551


def b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def segment(value: Any) -> str:
    return b64(value if isinstance(value, bytes) else json.dumps(value).encode())


def standard_alphabet(ctx: Ctx) -> str:
    """Respell a genuine token's signature in base64's standard alphabet ('+', '/').

    Decoders that also take the standard alphabet see the same bytes, so the signature still
    verifies: the token would have two spellings. Sign until header and payload have no '-' or
    '_' (their respelling would change the signed input) and the signature has one."""
    for _ in range(2000):
        token = ctx.ours(ctx.claims(sub="testclient"))
        signed, _dot, signature = token.rpartition(".")
        if not {"-", "_"} & set(signed) and {"-", "_"} & set(signature):
            return f"{signed}.{signature.replace('-', '+').replace('_', '/')}"
    raise AssertionError("no suitable token in 2000 signatures")


@dataclass(frozen=True)
class Ctx:
    """What an attacker has (the JWKS, a genuine token) and what the test may use (our key)."""

    record: KeyRecord
    jwk: dict[str, Any]
    genuine: str
    now: int

    @property
    def kid(self) -> str:
        return self.record.kid

    def claims(self, **changes: Any) -> dict[str, Any]:
        base = {
            "iss": ISSUER,
            "sub": "testuser@example.com",
            "aud": API,
            "exp": self.now + 600,
            "iat": self.now,
            "jti": secrets.token_urlsafe(8),
            "client_id": "testclient",
            "scope": "read write",
        }
        base.update(changes)
        return {k: v for k, v in base.items() if v is not _DROP}

    def header(self, **changes: Any) -> dict[str, Any]:
        base = {"alg": self.record.alg, "kid": self.kid, "typ": "at+jwt"}
        base.update(changes)
        return {k: v for k, v in base.items() if v is not _DROP}

    def ours(self, claims: Mapping[str, Any] | None = None, /, **header: Any) -> str:
        """Sign with OUR private key: only header or claim handling can refuse it.

        Signed by hand, so that no library check stands between the bent value and the server."""
        signing_input = f"{segment(self.header(**header))}.{segment(dict(claims or self.claims()))}"
        algorithm = jwt.get_algorithm_by_name(self.record.alg)
        signature = algorithm.sign(signing_input.encode(), self.record.private_key)
        return f"{signing_input}.{b64(signature)}"

    def raw(self, header: Any, claims: Any, signature: bytes) -> str:
        return f"{segment(header)}.{segment(claims)}.{b64(signature)}"

    def hmac(self, secret: bytes, alg: str = "HS256", **header: Any) -> str:
        head = self.header(alg=alg, **header)
        signing_input = f"{segment(head)}.{segment(self.claims())}".encode()
        digest = {"HS256": hashlib.sha256, "HS384": hashlib.sha384, "HS512": hashlib.sha512}[alg]
        return f"{signing_input.decode()}.{b64(hmac.new(secret, signing_input, digest).digest())}"

    def public_pem(self) -> bytes:
        return self.record.private_key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )

    def public_der(self) -> bytes:
        return self.record.private_key.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )

    def public_openssh(self) -> bytes:
        return self.record.private_key.public_key().public_bytes(
            serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH
        )

    def public_pkcs1_or_spki(self) -> bytes:
        public = self.record.private_key.public_key()
        if isinstance(public, rsa.RSAPublicKey):  # "-----BEGIN RSA PUBLIC KEY-----"
            return public.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.PKCS1)
        return self.public_pem()


_DROP = object()


def _attacker_ec() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _attacker_jwk(key: ec.EllipticCurvePrivateKey, kid: str | None) -> dict[str, Any]:
    jwk = json.loads(jwt.algorithms.ECAlgorithm.to_jwk(key.public_key()))
    if kid:
        jwk["kid"] = kid
    return dict(jwk)


def _self_signed(key: ec.EllipticCurvePrivateKey) -> str:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "testserver")])
    now = time.time()
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(datetime.datetime.fromtimestamp(now - 60, datetime.UTC))
        .not_valid_after(datetime.datetime.fromtimestamp(now + 3600, datetime.UTC))
        .sign(key, hashes.SHA256())
    )
    return base64.b64encode(cert.public_bytes(serialization.Encoding.DER)).decode()


def _with_attacker_key(ctx: Ctx, kid: str | None, **extra: Any) -> str:
    key = _attacker_ec()
    header: dict[str, Any] = {"typ": "at+jwt", **extra}
    if kid is not None:
        header["kid"] = kid
    header = {k: (v(key) if callable(v) else v) for k, v in header.items()}
    return jwt.encode(ctx.claims(), key, algorithm="ES256", headers=header)


def _zero_signature(ctx: Ctx) -> bytes:
    size = {"ES256": 64, "EdDSA": 64}.get(ctx.record.alg)
    if size is None:  # RSA: a signature as long as the modulus, all zeros
        size = ctx.record.private_key.public_key().key_size // 8  # type: ignore[union-attr]
    return b"\x00" * size


def _signing_input_swap(ctx: Ctx, **claims: Any) -> str:
    head, _, sig = ctx.genuine.split(".")
    return f"{head}.{segment(ctx.claims(**claims))}.{sig}"


def _deep(depth: int) -> str:
    return "[" * depth + "]" * depth


def _unsigned(alg: str, *, signed: bool) -> Callable[[Ctx], str]:
    return lambda ctx: ctx.raw(ctx.header(alg=alg), ctx.claims(), b"\x01" * 64 if signed else b"")


def _with_kid(kid: Any) -> Callable[[Ctx], str]:
    return lambda ctx: ctx.ours(kid=kid)


def _with_iss(iss: Any) -> Callable[[Ctx], str]:
    return lambda ctx: ctx.ours(ctx.claims(iss=iss))


FORGERIES: dict[str, Callable[[Ctx], str]] = {
    # alg none in every spelling, bare or with a signature left on (RFC 8725 §2.1, CVE-2015-9235)
    **{
        f"alg-{alg}-{tail}": _unsigned(alg, signed=tail == "signed")
        for alg in ("none", "None", "NONE", "nOnE", "none ")
        for tail in ("bare", "signed")
    },
    "alg-missing": lambda ctx: ctx.raw(ctx.header(alg=_DROP), ctx.claims(), b"\x00" * 64),
    "alg-empty": lambda ctx: ctx.raw(ctx.header(alg=""), ctx.claims(), b""),
    "alg-null": lambda ctx: ctx.raw(ctx.header(alg=None), ctx.claims(), b""),
    "alg-list": lambda ctx: ctx.raw(ctx.header(alg=[ctx.record.alg]), ctx.claims(), b"\x00" * 64),
    # HMAC keyed with what the JWKS publishes (CVE-2016-10555, CVE-2022-29217, CVE-2026-48526)
    "hs256-pem": lambda ctx: ctx.hmac(ctx.public_pem()),
    "hs256-pem-stripped": lambda ctx: ctx.hmac(ctx.public_pem().strip()),
    "hs384-pem": lambda ctx: ctx.hmac(ctx.public_pem(), "HS384"),
    "hs512-pem": lambda ctx: ctx.hmac(ctx.public_pem(), "HS512"),
    "hs256-der": lambda ctx: ctx.hmac(ctx.public_der()),
    "hs256-openssh": lambda ctx: ctx.hmac(ctx.public_openssh()),
    "hs256-pkcs1-pem": lambda ctx: ctx.hmac(ctx.public_pkcs1_or_spki()),
    "hs256-jwk-json": lambda ctx: ctx.hmac(json.dumps(ctx.jwk).encode()),
    "hs256-jwk-compact": lambda ctx: ctx.hmac(json.dumps(ctx.jwk, separators=(",", ":")).encode()),
    "hs256-jwks-json": lambda ctx: ctx.hmac(json.dumps({"keys": [ctx.jwk]}).encode()),
    "hs256-jwk-x": lambda ctx: ctx.hmac(
        base64.urlsafe_b64decode(ctx.jwk.get("x", ctx.jwk.get("n", "")) + "==")
    ),
    "hs256-kid": lambda ctx: ctx.hmac(ctx.kid.encode()),
    "hs256-empty": lambda ctx: ctx.hmac(b""),
    "hs256-issuer": lambda ctx: ctx.hmac(ISSUER.encode()),
    # the header names its own key (RFC 8725 §3.10, CVE-2018-0114)
    "jwk-embedded": lambda ctx: _with_attacker_key(ctx, None, jwk=lambda k: _attacker_jwk(k, None)),
    "jwk-embedded-real-kid": lambda ctx: _with_attacker_key(
        ctx, ctx.kid, jwk=lambda k: _attacker_jwk(k, ctx.kid)
    ),
    "jku": lambda ctx: _with_attacker_key(ctx, ctx.kid, jku="https://evil.example/jwks.json"),
    "jku-own-issuer": lambda ctx: _with_attacker_key(ctx, ctx.kid, jku=ISSUER + "/jwks"),
    "x5u": lambda ctx: _with_attacker_key(ctx, ctx.kid, x5u="https://evil.example/cert.pem"),
    "x5c": lambda ctx: _with_attacker_key(ctx, ctx.kid, x5c=lambda k: [_self_signed(k)]),
    "attacker-key-real-kid": lambda ctx: _with_attacker_key(ctx, ctx.kid),
    "attacker-key-no-kid": lambda ctx: _with_attacker_key(ctx, None),
    # our own key, but the kid is bent (unknown, injected, wrong type)
    **{
        f"kid-{name}": _with_kid(kid)
        for name, kid in {
            "unknown": "no-such-kid",
            "traversal": "../../../../../../dev/null",
            "traversal-json": "../keys/" + "x" * 10 + ".json",
            "sql": "' OR '1'='1' --",
            "nul": "kid\u0000",
            "empty": "",
            "long": "k" * 300,
            "int": 1,
            "list": ["k"],
            "null": None,
        }.items()
    },
    "kid-missing": lambda ctx: ctx.ours(kid=_DROP),
    "kid-real-plus-traversal": lambda ctx: ctx.ours(kid=ctx.kid + "/../" + ctx.kid),
    # psychic signatures (CVE-2022-21449) and signature stripping
    "sig-zero": lambda ctx: ctx.raw(ctx.header(), ctx.claims(), _zero_signature(ctx)),
    "sig-r-s-equal-n": lambda ctx: ctx.raw(ctx.header(), ctx.claims(), P256_N.to_bytes(32, "big") * 2),
    "sig-der-zero": lambda ctx: ctx.raw(ctx.header(), ctx.claims(), bytes.fromhex("3006020100020100")),
    "sig-one-byte": lambda ctx: ctx.raw(ctx.header(), ctx.claims(), b"\x01"),
    "sig-empty": lambda ctx: ctx.genuine.rsplit(".", 1)[0] + ".",
    "sig-missing": lambda ctx: ctx.genuine.rsplit(".", 1)[0],
    "payload-swapped": lambda ctx: _signing_input_swap(ctx, scope="read write admin"),
    "payload-other-user": lambda ctx: _signing_input_swap(ctx, sub="victim@example.com"),
    "header-swapped-alg": lambda ctx: (
        f"{segment(ctx.header(alg='PS256' if ctx.record.alg == 'RS256' else 'RS256'))}."
        + ctx.genuine.split(".", 1)[1]
    ),
    # our own key, claims that must still be refused
    "expired": lambda ctx: ctx.ours(ctx.claims(exp=ctx.now - 3600, iat=ctx.now - 4000)),
    "expired-beyond-leeway": lambda ctx: ctx.ours(ctx.claims(exp=ctx.now - 120, iat=ctx.now - 1000)),
    "exp-missing": lambda ctx: ctx.ours(ctx.claims(exp=_DROP)),
    "exp-string": lambda ctx: ctx.ours(ctx.claims(exp=str(ctx.now + 600))),
    "exp-bool": lambda ctx: ctx.ours(ctx.claims(exp=True)),
    **{
        f"iss-{name}": _with_iss(iss)
        for name, iss in {
            "prefix": ISSUER[:-1],
            "substring": "http",  # CVE-2024-53861: a partial match passed in PyJWT 2.10.0
            "suffix-slash": ISSUER + "/",
            "suffix-host": ISSUER + ".evil.example",
            "other-scheme": ISSUER.replace("http://", "https://"),
            "upper": ISSUER.upper(),
            "list": [ISSUER],
            "empty": "",
            "missing": _DROP,
        }.items()
    },
    "typ-jwt": lambda ctx: ctx.ours(typ="JWT"),
    "typ-missing": lambda ctx: ctx.ours(typ=_DROP),
    "typ-id-token": lambda ctx: ctx.ours(typ="id_token+jwt"),
    "typ-logout": lambda ctx: ctx.ours(typ="logout+jwt"),
    "typ-padded": lambda ctx: ctx.ours(typ=" at+jwt"),
    "typ-list": lambda ctx: ctx.ours(typ=["at+jwt"]),
    "crit-exp": lambda ctx: ctx.ours(crit=["exp"]),
    "crit-unknown": lambda ctx: ctx.ours(crit=["urn:example:x"], **{"urn:example:x": 1}),
    "crit-b64": lambda ctx: ctx.ours(crit=["b64"], b64=True),
    "crit-empty": lambda ctx: ctx.ours(crit=[]),
    "b64-false": lambda ctx: ctx.ours(b64=False),
    "sub-missing": lambda ctx: ctx.ours(ctx.claims(sub=_DROP)),
    "client-id-missing": lambda ctx: ctx.ours(ctx.claims(client_id=_DROP)),
    "client-id-int": lambda ctx: ctx.ours(ctx.claims(client_id=7)),
    "jti-missing": lambda ctx: ctx.ours(ctx.claims(jti=_DROP)),
    "scope-list": lambda ctx: ctx.ours(ctx.claims(scope=["read", "write", "admin"])),
    # malformed
    "empty": lambda ctx: "",
    "dots": lambda ctx: "..",
    "two-parts": lambda ctx: "a.b",
    "four-parts": lambda ctx: ctx.genuine + ".x",
    "jwe-shape": lambda ctx: ".".join([segment({"alg": "dir", "enc": "A256GCM"}), "", "iv", "ct", "tag"]),
    "padded-b64": lambda ctx: ".".join(part + "==" for part in ctx.genuine.split(".")),
    "std-b64": lambda ctx: standard_alphabet(ctx),
    "whitespace": lambda ctx: " " + ctx.genuine + " ",
    "newline": lambda ctx: ctx.genuine + "\n",
    "header-array": lambda ctx: ctx.raw([ctx.header()], ctx.claims(), b"\x00"),
    "header-not-json": lambda ctx: f"{b64(b'not json')}.{segment(ctx.claims())}.AAAA",
    "header-duplicate-alg": lambda ctx: (
        b64(
            (
                '{"alg":"none","kid":'
                + json.dumps(ctx.kid)
                + ',"typ":"at+jwt","alg":"'
                + ctx.record.alg
                + '"}'
            ).encode()
        )
        + "."
        + ctx.genuine.split(".", 1)[1]
    ),
    "payload-array": lambda ctx: ctx.raw(ctx.header(), [ctx.claims()], b"\x00"),
    "payload-nested-jwt": lambda ctx: ctx.raw(ctx.header(cty="JWT"), ctx.genuine.encode(), b"\x00"),
    "payload-deep": lambda ctx: f"{segment(ctx.header())}.{b64(_deep(50_000).encode())}.AAAA",
    "payload-nan": lambda ctx: segment(ctx.header()) + "." + b64(b'{"exp": NaN}') + ".AAAA",
    "huge": lambda ctx: ctx.ours(ctx.claims(pad="x" * 9_000)),
    "megabyte": lambda ctx: "a" * 1_000_000 + ".b.c",
    "non-ascii": lambda ctx: ctx.genuine[:-2] + "\u00e9\u00e9",
    "nul": lambda ctx: ctx.genuine + "\x00",
}


# --- the harness: one app and one verifier per signing algorithm -----------------------------------


@pytest.fixture(scope="module")
def alg_keys(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """One keys folder per algorithm (RSA generation is slow: once per module)."""
    out = {}
    for alg in ALGS:
        directory = tmp_path_factory.mktemp(f"keys-{alg}")
        keyfolder.ensure(directory, alg, now=time.time(), retire_after=960)
        out[alg] = directory
    return out


@dataclass
class Target:
    http: testing.TestClient
    verifier: Verifier
    ctx: Ctx


@pytest.fixture(scope="module", params=ALGS)
def target(request: pytest.FixtureRequest, alg_keys: dict[str, Path]) -> Target:
    """One app per algorithm for the whole module: a refused forgery changes no state."""
    alg: str = request.param
    ring = KeyRing(alg_keys[alg], retire_after=960)
    clock = Clock()
    store = fakeredis.FakeRedis(server=fakeredis.FakeServer())
    settings = suite_settings(dataclasses.replace(load_settings(FIXTURES, env={}), issuer=ISSUER))
    chosen = dataclasses.replace(settings, signing_algorithm=alg)
    http = testing.TestClient(
        create_app(chosen, ring, store, clock=clock, checker=SecretChecker(dummy_log_n=10))
    )

    def fetch(url: str) -> tuple[bytes, Mapping[str, str]]:
        assert url == ISSUER + "/jwks"
        result = http.simulate_get("/jwks")
        return result.content, dict(result.headers)

    verifier = Verifier(issuer=ISSUER, audience=API, jwks_uri=ISSUER + "/jwks", fetch=fetch, clock=clock)
    genuine = token(http, {"grant_type": "client_credentials"}).json["access_token"]
    record = ring.signer()
    assert record is not None
    jwk = next(k for k in http.simulate_get("/jwks").json["keys"] if k["kid"] == record.kid)
    return Target(http, verifier, Ctx(record, jwk, genuine, int(clock.now)))


def introspected(target: Target, value: str) -> dict[str, Any]:
    result = call(target.http, INTROSPECT, {"token": value})
    assert result.status_code == 200, result.text
    body: dict[str, Any] = result.json
    return body


def test_the_genuine_token_passes_both_checks(target: Target) -> None:
    """Positive control: without it every refusal below could be a broken harness."""
    assert introspected(target, target.ctx.genuine)["active"] is True
    assert target.verifier.verify(target.ctx.genuine)["client_id"] == "testclient"
    # And a token we sign in the tests is accepted too, so only the bent part is refused below.
    ours = target.ctx.ours(target.ctx.claims(sub="testclient"))
    assert introspected(target, ours)["active"] is True
    assert target.verifier.verify(ours)["sub"] == "testclient"


@pytest.mark.parametrize("name", sorted(FORGERIES))
def test_every_forgery_is_inactive_and_unverifiable(target: Target, name: str) -> None:
    forged = FORGERIES[name](target.ctx)
    if forged == "" or "\x00" in forged or len(forged) > 16_000:
        # Omitted, NUL or over the form cap: refused before introspection looks (400/413).
        assert call(target.http, INTROSPECT, {"token": forged}).status_code in (400, 413)
    else:
        assert introspected(target, forged) == {"active": False}, name
    with pytest.raises(InvalidToken):
        target.verifier.verify(forged)


@pytest.mark.parametrize("name", ["iat-future", "nbf-future", "aud-other", "aud-empty-list", "aud-missing"])
def test_the_verifier_checks_what_introspection_reports(target: Target, name: str) -> None:
    """Resource-server checks (RFC 9068 §4): audience and time claims our introspection reports."""
    ctx = target.ctx
    claims = {
        "iat-future": ctx.claims(iat=ctx.now + 3600),
        "nbf-future": ctx.claims(nbf=ctx.now + 3600),
        "aud-other": ctx.claims(aud="https://evil.example"),
        "aud-empty-list": ctx.claims(aud=[]),
        "aud-missing": ctx.claims(aud=_DROP),
    }[name]
    with pytest.raises(InvalidToken):
        target.verifier.verify(ctx.ours(claims))


@pytest.mark.parametrize(
    ("name", "claims"),
    [
        ("exp-float", {"exp": 1e12}),
        ("exp-huge", {"exp": 1e308}),
        ("fid-int", {"fid": 1}),
        ("fid-list", {"fid": ["x"]}),
    ],
)
def test_claims_we_never_mint_are_inactive_at_introspection(
    target: Target, name: str, claims: dict[str, Any]
) -> None:
    """Introspection knows our exact claim types (integer exp, string fid); anything else is not ours."""
    assert introspected(target, target.ctx.ours(target.ctx.claims(**claims))) == {"active": False}, name


def test_a_forged_token_is_never_revoked_nor_revokes(target: Target) -> None:
    for name in ("hs256-pem", "alg-none-bare", "attacker-key-real-kid", "payload-other-user"):
        result = call(target.http, "/api/v1/revoke", {"token": FORGERIES[name](target.ctx)})
        assert result.status_code == 200, result.text  # RFC 7009 §2.2: unknown tokens are ignored
    assert introspected(target, target.ctx.genuine)["active"] is True


# Known vulnerabilities of JWT libraries, each replayed against both of our checks above.
KNOWN_CVES: dict[str, tuple[str, tuple[str, ...]]] = {
    "CVE-2015-9235": (
        "jsonwebtoken: HS256 verified with the RSA public key",
        ("hs256-pem", "hs256-pem-stripped"),
    ),
    "CVE-2016-10555": ("jwt-simple: the token picks HMAC over RSA", ("hs256-pem", "hs384-pem", "hs512-pem")),
    "CVE-2017-11424": ("PyJWT: key confusion through PKCS#1 PEM public keys", ("hs256-pkcs1-pem",)),
    "CVE-2022-29217": ("PyJWT: key confusion through OpenSSH public keys", ("hs256-openssh",)),
    "CVE-2024-33663": (
        "python-jose: algorithm confusion with OpenSSH ECDSA keys",
        ("hs256-openssh", "hs256-der"),
    ),
    "CVE-2026-48526": (
        "PyJWT < 2.13: a JWK document accepted as HMAC secret",
        ("hs256-jwk-json", "hs256-jwks-json"),
    ),
    "CVE-2018-0114": (
        "node-jose: trusts the key embedded in the header",
        ("jwk-embedded", "jwk-embedded-real-kid"),
    ),
    "CVE-2022-21449": (
        "Java ECDSA: r = s = 0 verifies anything",
        ("sig-zero", "sig-r-s-equal-n", "sig-der-zero"),
    ),
    "CVE-2024-53861": ("PyJWT 2.10.0: iss compared as a substring", ("iss-substring", "iss-prefix")),
    "CVE-2025-59420": (
        "Authlib (and PyJWT < 2.12): unknown crit accepted",
        ("crit-exp", "crit-unknown", "crit-b64"),
    ),
}


@pytest.mark.parametrize("cve", sorted(KNOWN_CVES))
def test_known_jwt_library_cves_do_not_apply(target: Target, cve: str) -> None:
    _, names = KNOWN_CVES[cve]
    for name in names:
        forged = FORGERIES[name](target.ctx)
        assert introspected(target, forged) == {"active": False}, (cve, name)
        with pytest.raises(InvalidToken):
            target.verifier.verify(forged)


def test_forgeries_cover_every_class_the_issue_names() -> None:
    names = " ".join(FORGERIES)
    for needle in (
        "alg-none",
        "alg-nOnE",
        "hs256-pem",
        "hs256-jwk-json",
        "hs256-der",
        "kid-unknown",
        "kid-traversal",
        "jku",
        "x5u",
        "jwk-embedded",
        "x5c",
        "expired",
        "iss-prefix",
        "iss-suffix",
        "typ-jwt",
        "crit",
        "megabyte",
        "sig-zero",
    ):
        assert needle in names, needle


def test_ed25519_and_rsa_keys_are_what_they_claim(alg_keys: dict[str, Path]) -> None:
    def kind(path: Path) -> type:
        signer = KeyRing(path, retire_after=960).signer()
        assert signer is not None
        return type(signer.private_key)

    kinds = {alg: kind(path) for alg, path in alg_keys.items()}
    assert issubclass(kinds["RS256"], rsa.RSAPrivateKey)
    assert issubclass(kinds["EdDSA"], ed25519.Ed25519PrivateKey)
    assert issubclass(kinds["ES256"], ec.EllipticCurvePrivateKey)
