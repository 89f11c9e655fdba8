"""jwtauth.verify alone: the jwtauth-verify wheel (scripts/build_verify.py), unpacked beside PyJWT
and cryptography in an interpreter that has nothing else, verifies our tokens. Nothing else of
jwtauth (not even jwtauth/__init__.py: `jwtauth` is a namespace there), no Falcon, no Redis
client, no Jinja2."""

from __future__ import annotations

import json
import subprocess
import sys
import zipfile
from pathlib import Path

import cryptography
import jwt
import pytest
from falcon import testing

from scripts.build_verify import build
from tests.helpers import ISSUER, TOKENS, basic

pytestmark = pytest.mark.process
# What the verifier's own dependencies need: PyJWT, cryptography and cryptography's cffi.
DEPENDENCIES = ("jwt", "cryptography", "cffi", "_cffi_backend", "pycparser")

CHILD = """
import json, sys
sys.path[:0] = [SITE]
from jwtauth.verify import InvalidToken, Verifier
body = json.dumps(JWKS).encode()
verifier = Verifier(issuer=ISSUER, audience=AUDIENCE, jwks_uri=ISSUER + "/jwks",
                    fetch=lambda url, **kw: (body, {"Content-Type": "application/json"}), clock=lambda: NOW)
claims = verifier.verify(TOKEN)
try:
    verifier.verify(TOKEN[:-4] + "AAAA")
    refused = False
except InvalidToken:
    refused = True
loaded = sorted({m.split(".")[0] for m in sys.modules})
try:
    import falcon  # noqa: F401
    falcon_importable = True
except ImportError:
    falcon_importable = False
print(json.dumps({"sub": claims["sub"], "refused": refused, "loaded": loaded,
                  "falcon_importable": falcon_importable, "jwtauth": list(sys.modules["jwtauth"].__path__)}))
"""


def _site(root: Path) -> Path:
    """Lay out a site folder: the jwtauth-verify wheel unpacked, and its dependencies."""
    site = root / "site"
    wheel = build(root / "dist")
    with zipfile.ZipFile(wheel) as archive:
        archive.extractall(site)
    assert not (site / "jwtauth" / "__init__.py").exists()
    assert {p.name for p in (site / "jwtauth" / "verify").iterdir()} >= {
        "__init__.py",
        "verifier.py",
        "py.typed",
    }
    packages = Path(jwt.__file__).resolve().parent.parent
    assert Path(cryptography.__file__).resolve().parent.parent == packages
    for entry in packages.iterdir():
        if entry.name.split(".")[0] in DEPENDENCIES and not entry.name.endswith(".dist-info"):
            (site / entry.name).symlink_to(entry)
    return site


def test_the_verifier_needs_only_pyjwt_and_cryptography(make_app: testing.TestClient, tmp_path: Path) -> None:
    http = make_app()
    issued = http.simulate_post(TOKENS, body="grant_type=client_credentials", headers=basic())
    token = issued.json["access_token"]
    claims = jwt.decode(token, options={"verify_signature": False})  # the test clock's time
    values = {"SITE": str(_site(tmp_path)), "JWKS": http.simulate_get("/jwks").json, "ISSUER": ISSUER,
              "AUDIENCE": claims["aud"], "TOKEN": token, "NOW": claims["iat"]}  # fmt: skip
    prelude = "".join(f"{name} = {json.dumps(value)}\n" for name, value in values.items())
    # -I: no user site, no PYTHON* variables; -S: no site-packages at all. Only the stdlib and SITE.
    result = subprocess.run(
        [sys.executable, "-I", "-S", "-c", prelude + CHILD], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["sub"] == "testclient" and report["refused"] is True
    assert not report["falcon_importable"]
    assert not {"falcon", "redis", "jinja2", "granian", "prometheus_client"} & set(report["loaded"])
    assert report["jwtauth"] == [str(tmp_path / "site" / "jwtauth")]  # the namespace, nothing else
