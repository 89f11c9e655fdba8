"""bench/memory.py: worker RSS over a million tokens, summarised and rendered."""

from __future__ import annotations

import pytest

from bench import memory


def test_slope_is_kib_per_100k_tokens() -> None:
    samples = [(0, 50_000), (500_000, 50_500), (1_000_000, 51_000)]
    assert memory.slope(samples) == pytest.approx(100.0)
    assert memory.slope([(0, 1), (10, 1)]) == 0.0
    assert memory.slope([(5, 1)]) == 0.0


def test_summary_per_worker_first_last_max_and_a_restart() -> None:
    samples = [
        (0, {1: 1000, 2: 2000}),
        (100_000, {1: 1400, 2: 2000}),
        (200_000, {1: 1100}),  # worker 2 gone: restarted
    ]
    one, two = memory.rss_summary(samples)
    assert (one["pid"], one["first"], one["last"], one["max"], one["complete"]) == (1, 1000, 1100, 1400, True)
    assert two["complete"] is False and two["samples"] == 2 and two["slope"] == 0.0


def test_render_rss_says_how_many_tokens_and_whether_the_cap_stopped_it() -> None:
    samples = [(0, {7: 1024}), (1_000_000, {7: 2048})]
    lines = memory.render_rss({"samples": samples, "target": 1_000_000, "reached": True})
    assert "1,000,000 client_credentials tokens" in lines[0] and "time cap" not in lines[0]
    assert lines[-1] == "| 7 | 1.0 | 2.0 | 2.0 | +1.0 | +102.4 |"
    short = memory.render_rss({"samples": samples[:1], "target": 1_000_000, "reached": False})
    assert "time cap stopped it short" in short[0]


def test_render_sessions_names_what_redis_holds_per_session() -> None:
    text = "\n".join(
        memory.render_sessions(
            {"sessions": 10, "linked_bytes": 200, "ended_bytes": 90, "info_linked_bytes": 230}
        )
    )
    assert "started no refresh family: 0 bytes" in text
    assert "one refresh family: 200 bytes" in text and "grew by 230 bytes" in text
    assert "90 bytes more for its end marker" in text


def test_sessions_are_weighed_on_real_redis(real_redis: tuple[object, str]) -> None:
    client, prefix = real_redis
    weighed = memory.redis_per_session(client, prefix)
    assert weighed["sessions"] == memory.SESSIONS
    # A set of one 32-hex family id, and a "1" marker: tens of bytes each, never nothing.
    assert 40 < weighed["linked_bytes"] < 1000
    assert 40 < weighed["ended_bytes"] < 1000
