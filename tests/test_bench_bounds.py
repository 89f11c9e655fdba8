"""bench/bounds.py and the bound routes of bench/ceiling_app.py: what this stack allows, reported."""

from __future__ import annotations

import fakeredis
import falcon.testing
import pytest

from bench import bounds, ceiling_app, report
from bench.harness import Result
from tests.test_bench_report import _report, _result

BASIC = {"Authorization": "Basic dGVzdGNsaWVudDp0ZXN0cGFzc3dvcmQ="}
FORM, FORM_TYPE = "grant_type=client_credentials", {"Content-Type": "application/x-www-form-urlencoded"}


def _section(text: str) -> str:
    title = "## What this stack allows: the ceiling app under jwtauth's serving layer\n"
    return text.split(title, 1)[1].split("\n## ", 1)[0]


def _bounds() -> dict[str, Result]:
    return {
        "/api/v1/tokens/": _result("stack ceiling app under granian", 3000, [3.0, 2.9, 3.1]),
        "/api/v1/tokens/redis1": _result("stack ceiling app + 1 Redis round trip, under granian", 1500,
                                         [1.5, 1.4, 1.6]),
    }  # fmt: skip


def test_each_grant_is_divided_by_the_bound_with_its_round_trips() -> None:
    section = _section(report.render(_report(bounds=_bounds())))
    assert (
        "| stack ceiling app + 1 Redis round trip, under granian | 1500 | 1.50 | 1.50 1.40 1.60 |" in section
    )
    # client_credentials 2.4x of a 3.0x bound; refresh 0.9x of 1.5x; the code exchange (one trip,
    # its take starts the family) 0.8x of 1.5x.
    assert "| client_credentials ES256 | 2.40 | stack ceiling app under granian | 3.00 | 0.80 |" in section
    assert (
        "| refresh_token | 0.90 | stack ceiling app + 1 Redis round trip, under granian | 1.50 | 0.60 |"
        in section
    )
    assert (
        "| authorization_code | 0.80 | stack ceiling app + 1 Redis round trip, under granian | 1.50 | 0.53 |"
        in (section)
    )


def test_a_run_without_the_bounds_says_so() -> None:
    assert "Not measured in this run" in _section(report.render(_report()))


def test_a_bound_not_measured_leaves_its_grants_without_a_share() -> None:
    partial = {k: v for k, v in _bounds().items() if k != "/api/v1/tokens/redis1"}
    section = _section(report.render(_report(bounds=partial)))
    assert (
        "| authorization_code | 0.80 | stack ceiling app + 1 Redis round trip, under granian | - | - |"
        in section
    )
    assert "| client_credentials ES256 | 2.40 | stack ceiling app under granian | 3.00 | 0.80 |" in section


def test_the_bound_route_makes_its_round_trip_with_a_ttl_then_signs(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    store = fakeredis.FakeRedis()
    monkeypatch.setenv("CEILING_REDIS_URL", "redis://bound.invalid:6379/0")
    monkeypatch.setenv("CEILING_REDIS_PREFIX", "bound-test:")
    monkeypatch.setattr("redis.Redis.from_url", lambda url: store)
    client = falcon.testing.TestClient(ceiling_app.create_app())
    before = set(store.keys("bound-test:*"))
    answer = client.simulate_post("/api/v1/tokens/redis1", body=FORM, headers={**BASIC, **FORM_TYPE})
    assert answer.status_code == 200 and answer.json["token_type"] == "Bearer"
    written = set(store.keys("bound-test:*")) - before
    assert len(written) == 1
    assert all(0 < store.pttl(key) <= 60_000 for key in written)
    # A wrong client secret is refused after the trips, like the plain route: nothing signed.
    refused = client.simulate_post("/api/v1/tokens/redis1", body=FORM, headers=FORM_TYPE)
    assert refused.status_code == 401


def test_without_a_redis_url_the_ceiling_app_has_only_its_plain_route(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("CEILING_REDIS_URL", raising=False)
    client = falcon.testing.TestClient(ceiling_app.create_app())
    assert client.simulate_post("/api/v1/tokens/redis1").status_code == 404


def test_the_bounds_cover_every_ratio_target_with_redis() -> None:
    bounded = {key for _, grants in bounds.BOUNDS.values() for key in grants}
    assert set(report.TARGETS) <= bounded


def test_the_readme_block_sets_each_target_beside_its_bound() -> None:
    block = report.render_readme(_report(bounds=_bounds()))
    assert (
        "| password | 1.10 | stack ceiling app + 1 Redis round trip, under granian | 1.50 | 0.73 |" in block
    )
    assert "under jwtauth's own serving layer" not in report.render_readme(_report())
