"""The README's tour is generated: its blocks match the script's steps, and the script runs clean."""

from __future__ import annotations

import importlib.util
import re
import subprocess
import sys
from types import ModuleType

import pytest

from tests.helpers import ROOT

SCRIPT = ROOT / "scripts" / "readme_tour.py"
README = ROOT / "README.md"


def load_script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("readme_tour", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["readme_tour"] = module  # dataclasses look their module up while being built
    spec.loader.exec_module(module)
    return module


def test_readme_blocks_are_the_scripts_steps_in_order() -> None:
    in_readme = re.findall(r"<!-- tour:([\w-]+) -->", README.read_text(encoding="utf-8"))
    assert in_readme == [name for name, _ in load_script().steps()]


def test_the_front_door_stays_at_the_top() -> None:
    text = README.read_text(encoding="utf-8")
    quick_start = text.index("## Quick start")
    assert quick_start < text.index("## A tour")
    assert "make run" in text[quick_start : quick_start + 400]
    assert "make test" in text[quick_start : quick_start + 400]


@pytest.mark.e2e
def test_the_tour_runs_against_a_real_server() -> None:
    done = subprocess.run(
        [sys.executable, str(SCRIPT)], capture_output=True, text=True, cwd=ROOT, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr
    out = done.stdout
    blocks = dict(re.findall(r"<!-- tour:([\w-]+) -->\n(.*?)<!-- /tour -->", out, flags=re.DOTALL))
    assert '"token_type": "Bearer"' in blocks["client-credentials"]
    assert "verified: yes" in blocks["decode"]
    assert "303 See Other" in blocks["authorize-code"] and "state=somestate" in blocks["authorize-code"]
    assert '"refresh_token"' in blocks["code-exchange"]
    assert "#access_token=" in blocks["authorize-implicit"]
    assert '"active": true' in blocks["introspect"] and "200 OK" in blocks["revoke"]
    assert '{"active": false}' in blocks["introspect-revoked"]
    assert '"error": "invalid_grant"' in blocks["refresh-revoked"]
    assert "ok: testuser@example.com read write\nrefused: bad signature" in blocks["verify"]
    device = blocks["device-authorization"]
    assert '"interval": 5' in device and "/device?user_code=" in device
    assert "Your device is connected" in blocks["device-approve"]
    assert '"id_token": "eyJ' in blocks["oidc-code-exchange"]
    assert '"sub": "5f0c1d2e-8a4b-4c6d-9e7f-0a1b2c3d4e5f"' in blocks["oidc-userinfo"]
    assert "prompt=none" in blocks["oidc-sso"] and "?code=" in blocks["oidc-sso"]
    assert "Location: https://www.example.com/logged-out?state=bye" in blocks["oidc-logout"]
    assert '"scope": "read", "refresh_token"' in blocks["device-poll"]
    assert "401 Unauthorized" in blocks["rs-challenge"] and "resource_metadata=" in blocks["rs-challenge"]
    assert '"authorization_servers": ["http://127.0.0.1:8000"]' in blocks["rs-metadata"]
    assert '{"sub": "testclient", "client_id": "testclient", "scope": "read"}' in blocks["rs-hello"]
    assert "200 {'sub': 'testclient'" in blocks["rs-dpop"] and "'dpop_jkt': " in blocks["rs-dpop"]
    assert "401 ['Bearer realm=" in blocks["rs-dpop"] and 'error="invalid_token"' in blocks["rs-dpop"]
    assert ":8000" in out and "Traceback" not in out
