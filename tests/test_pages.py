"""Tests for jwtauth.web.pages: the operator's override folder, the CSP hash, the headers."""

from __future__ import annotations

import base64
import hashlib
import re
from pathlib import Path

import falcon
import pytest
from falcon import testing

from jwtauth.config.reader import ConfigError
from jwtauth.config.settings import load_settings
from jwtauth.web import csrf
from jwtauth.web.pages import STYLESHEET, Pages, form_token_ok

PACKAGED = Path(__file__).resolve().parents[1] / "jwtauth" / "web" / "templates"
EXAMPLE = Path(__file__).resolve().parents[1] / "templates" / "example"


def render(pages: Pages, template: str, **context: object) -> falcon.Response:
    resp = falcon.Response()
    pages.render(resp, template, **context)
    return resp


def csp_hash(css: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(css.encode()).digest()).decode() + "'"


def test_without_overrides_the_packaged_pages_render() -> None:
    resp = render(Pages(None), "error.html", title="Nope", message="no such client", error=None)
    assert "<span>jwtauth</span>" in resp.text and "no such client" in resp.text
    assert csp_hash((PACKAGED / STYLESHEET).read_text()) in resp.get_header("Content-Security-Policy")


def test_an_override_shadows_one_template_and_the_rest_stay_packaged(tmp_path: Path) -> None:
    (tmp_path / "base.html").write_text((EXAMPLE / "base.html").read_text())
    resp = render(Pages(tmp_path), "error.html", title="Nope", message="no such client", error=None)
    assert "Acme Accounts" in resp.text and "<span>jwtauth</span>" not in resp.text
    assert "no such client" in resp.text  # error.html itself came from the package


def test_an_overridden_stylesheet_is_inlined_and_allowed_by_its_own_hash(tmp_path: Path) -> None:
    css = (PACKAGED / STYLESHEET).read_text().replace("#2454d6", "#b0126a")
    (tmp_path / STYLESHEET).write_text(css)
    resp = render(Pages(tmp_path), "error.html", title="t", message="m", error=None)
    assert "#b0126a" in resp.text
    policy = resp.get_header("Content-Security-Policy")
    assert csp_hash(css) in policy and csp_hash((PACKAGED / STYLESHEET).read_text()) not in policy
    assert re.search(r"default-src 'none'", policy)


def test_a_stylesheet_that_could_close_the_style_element_is_refused(tmp_path: Path) -> None:
    (tmp_path / STYLESHEET).write_text("body{}</style><script>alert(1)</script>")
    with pytest.raises(ValueError, match="must not contain"):
        Pages(tmp_path)


def test_an_override_still_autoescapes(tmp_path: Path) -> None:
    (tmp_path / "error.html").write_text("{{ message }}")
    resp = render(Pages(tmp_path), "error.html", title="t", message="<script>x</script>")
    assert resp.text == "&lt;script&gt;x&lt;/script&gt;"


def test_the_setting_names_a_folder_relative_to_the_settings_file(tmp_path: Path) -> None:
    (tmp_path / "brand").mkdir()
    config = tmp_path / "jwtauth.toml"
    config.write_text('[pages]\ntemplates = "brand"\n')
    assert load_settings(config, env={}).templates_dir == tmp_path / "brand"


def test_a_missing_override_folder_is_a_configuration_error(tmp_path: Path) -> None:
    config = tmp_path / "jwtauth.toml"
    config.write_text('[pages]\ntemplates = "nowhere"\n')
    with pytest.raises(ConfigError, match=r"pages\.templates: .*nowhere.* is not a folder"):
        load_settings(config, env={})


def test_templates_beside_the_settings_file_are_found_without_a_setting(tmp_path: Path) -> None:
    (tmp_path / "templates").mkdir()
    config = tmp_path / "jwtauth.toml"
    config.write_text('issuer = "https://auth.example.com"\n')
    assert load_settings(config, env={}).templates_dir == tmp_path / "templates"


def test_the_environment_names_the_folder_too(tmp_path: Path) -> None:
    (tmp_path / "brand").mkdir()
    config = tmp_path / "jwtauth.toml"
    config.write_text("")
    settings = load_settings(config, env={"JWTAUTH_PAGES_TEMPLATES": "brand"})
    assert settings.templates_dir == tmp_path / "brand"


def test_the_authorize_page_uses_the_override(make_branded_app: testing.TestClient) -> None:
    page = make_branded_app.simulate_get(
        "/authorize",
        params={"response_type": "code", "client_id": "testclient", "redirect_uri": "https://www.example.com"},
    )
    assert page.status_code == 200 and "Acme Accounts" in page.text
    assert 'name="username"' in page.text  # the packaged authorize.html, inside the new frame


@pytest.fixture
def make_branded_app(tmp_path: Path) -> testing.TestClient:
    import dataclasses

    import fakeredis

    from jwtauth.app import create_app
    from jwtauth.cli import keyfolder
    from jwtauth.keys import KeyRing

    brand = tmp_path / "brand"
    brand.mkdir()
    (brand / "base.html").write_text((EXAMPLE / "base.html").read_text())
    fixtures = Path(__file__).resolve().parents[1] / "jwtauth" / "fixtures" / "test_credentials.toml"
    settings = dataclasses.replace(
        load_settings(fixtures, env={}), issuer="http://127.0.0.1:8000", templates_dir=brand
    )
    keyfolder.ensure(tmp_path / "keys", "ES256", retire_after=960)
    keyring = KeyRing(tmp_path / "keys", retire_after=960)
    store = fakeredis.FakeRedis(server=fakeredis.FakeServer())
    return testing.TestClient(create_app(settings, keyring, store))


@pytest.mark.parametrize(
    ("origin", "token_ok", "expected"),
    [(None, True, True), ("http://testserver", True, True), ("http://evil.example", True, False),
     ("null", True, False), (None, False, False)],
)  # fmt: skip
def test_form_token_ok_needs_the_token_and_our_origin(
    origin: str | None, token_ok: bool, expected: bool
) -> None:
    secret = csrf.browser_secret(None)
    token = csrf.issue(secret, {"a": "1"}, ["a"], now=1000) if token_ok else "1.x"
    headers = {"Cookie": f"{csrf.cookie_name(False)}={secret}", **({"Origin": origin} if origin else {})}
    req = testing.create_req(headers=headers)
    assert form_token_ok(req, token, {"a": "1"}, ["a"], issuer="http://testserver", now=1001) is expected
