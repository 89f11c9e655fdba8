"""bench/roundtrips.py: Redis round trips, commands and script calls per request, from INFO."""

from __future__ import annotations

from bench import roundtrips


def _info(reads: int, **calls: tuple[int, int]) -> dict[str, object]:
    """INFO as redis-py parses it: stats keys beside cmdstat_<name> dicts."""
    info: dict[str, object] = {"total_reads_processed": reads, "used_cpu_user": 1.0}
    for name, (count, usec) in calls.items():
        info[f"cmdstat_{name}"] = {"calls": count, "usec": usec, "usec_per_call": 1.0}
    return info


def test_snapshot_reads_the_counters_of_every_command() -> None:
    snap = roundtrips.snapshot(_info(7, evalsha=(3, 30), HGET=(2, 4)))
    assert snap.reads == 7
    assert snap.calls == {"evalsha": 3, "hget": 2}
    assert snap.usec == {"evalsha": 30, "hget": 4}


def test_per_request_takes_off_the_benchs_own_info_and_counts_scripts() -> None:
    before = roundtrips.snapshot(_info(100, evalsha=(10, 100), hmget=(10, 20), info=(5, 50)))
    # 100 requests: 2 round trips each (+1 read: the second INFO), 3 scripts in the 2 trips,
    # each script running an HMGET inside Redis.
    after = roundtrips.snapshot(_info(301, evalsha=(310, 3100), hmget=(310, 620), info=(6, 60), get=(50, 10)))
    counts = roundtrips.per_request(before, after, 100)
    assert counts.trips == 2.0
    assert counts.scripts == 3.0
    assert counts.commands == 6.5  # 300 EVALSHA + 300 HMGET + 50 GET, the INFO left out
    assert counts.redis_us == (3000 + 600 + 10) / 100
    assert counts.top[0] == ("evalsha", 3.0) and counts.top[-1] == ("get", 0.5)


def test_a_scenario_without_redis_counts_zero() -> None:
    same = roundtrips.snapshot(_info(10, info=(1, 1)))
    after = roundtrips.snapshot(_info(11, info=(2, 2)))
    counts = roundtrips.per_request(same, after, 5000)
    assert (counts.trips, counts.commands, counts.scripts, counts.top) == (0.0, 0.0, 0.0, ())


def test_merge_weights_rounds_by_their_requests() -> None:
    one = roundtrips.PerRequest(1.0, 2.0, 1.0, 10.0, (("evalsha", 1.0),))
    three = roundtrips.PerRequest(3.0, 6.0, 1.0, 30.0, (("evalsha", 1.0), ("get", 2.0)))
    merged = roundtrips.merge([(one, 300), (three, 100)])
    assert merged.trips == 1.5 and merged.commands == 3.0 and merged.redis_us == 15.0
    assert dict(merged.top) == {"evalsha": 1.0, "get": 0.5}


def test_explain_lists_only_the_scenarios_that_use_redis_with_cost_per_round_trip() -> None:
    code = roundtrips.PerRequest(2.0, 9.0, 2.0, 100.0, (("evalsha", 2.0),))
    none = roundtrips.PerRequest(0.0, 0.0, 0.0, 0.0)
    lines = roundtrips.explain([("code", code, 0.9, 0.2), ("jwks", none, 0.1, 0.0)], baseline_cpu=0.3)
    assert len(lines) == 3  # header, rule, one row
    cells = [cell.strip() for cell in lines[2].strip("|").split("|")]
    assert cells[:8] == ["code", "2.00", "9.00", "2.00", "100.0", "0.100", "0.900", "0.300"]
    assert cells[8] == "evalsha 2.00"
    assert roundtrips.explain([("jwks", none, 0.1, 0.0)], baseline_cpu=0.3) == []
