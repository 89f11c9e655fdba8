"""Request ids, the JSON access log (one line per request, no secrets) and /metrics."""

from __future__ import annotations

import dataclasses
import json
import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import fakeredis
import pytest
import requests
from falcon import testing

from jwtauth.accounts.hashing import SecretChecker
from jwtauth.app import create_app, create_management_app
from jwtauth.cli import keyfolder
from jwtauth.config.settings import Settings
from jwtauth.keys import KeyRing
from jwtauth.observability import Metrics, request_id
from tests import authflow
from tests.helpers import (
    INTROSPECT,
    PASSWORD,
    README_QUERY,
    REVOKE,
    TOKENS,
    USER,
    basic,
    call,
    login,
    refresh,
    tokens_of,
)
from tests.support import REDIS_URL, free_port

LOG_FIELDS = {"ts", "request_id", "method", "path", "status", "ms", "client", "client_id"}
LOG_FIELDS |= {"endpoint", "grant", "error"}
CODE_QUERY = {**README_QUERY, "redirect_uri": "https://www.example.com"}


@dataclasses.dataclass
class Observed:
    """An app on fakeredis with its access-log lines captured."""

    http: testing.TestClient
    lines: list[str]
    server: fakeredis.FakeServer
    management: testing.TestClient

    def log(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.lines]

    def metric(self, name: str, **labels: str) -> float:
        """Return one sample of /metrics (0 when absent)."""
        return sample(self.management.simulate_get("/metrics").text, name, **labels)


def sample(text: str, name: str, **labels: str) -> float:
    """Return the value of the sample `name{labels}` in a Prometheus text exposition."""
    for line in text.splitlines():
        match = re.fullmatch(r"([a-zA-Z_:][\w:]*)(?:\{(.*)\})? (\S+)", line)
        if not match or match.group(1) != name:
            continue
        found = dict(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', match.group(2) or ""))
        if found == labels:
            return float(match.group(3))
    return 0.0


def observed(settings: Settings, keyring: KeyRing, **changes: Any) -> Observed:
    lines: list[str] = []
    server = fakeredis.FakeServer()
    metrics = Metrics()
    app = create_app(
        dataclasses.replace(settings, **changes),
        keyring,
        fakeredis.FakeRedis(server=server),
        checker=SecretChecker(dummy_log_n=10),
        metrics=metrics,
        access_log=lines.append,
    )
    management = create_management_app(keyring, fakeredis.FakeRedis(server=server), metrics)
    return Observed(testing.TestClient(app), lines, server, testing.TestClient(management))


@pytest.fixture
def obs(settings: Settings, keyring: KeyRing) -> Observed:
    return observed(settings, keyring)


# --- request id ---------------------------------------------------------------------------------


def test_a_request_id_is_made_when_none_is_sent(obs: Observed) -> None:
    first, second = (obs.http.simulate_get("/healthz").headers["X-Request-ID"] for _ in range(2))
    assert re.fullmatch(r"[0-9a-f]{16}", first) and first != second
    assert [line["request_id"] for line in obs.log()] == [first, second]


def test_a_sane_incoming_request_id_is_echoed_and_logged(obs: Observed) -> None:
    sent = "4bf92f35-77b3-4da6-a3ce-929d0e0e4736"
    result = obs.http.simulate_get("/jwks", headers={"X-Request-ID": sent})
    assert result.headers["X-Request-ID"] == sent
    assert obs.log()[0]["request_id"] == sent


@pytest.mark.parametrize("sent", ["x" * 129, "has space", 'quo"te', "new\nline", "", "ünïcode"])
def test_an_insane_request_id_is_replaced(sent: str) -> None:
    made = request_id(sent)
    assert made != sent and re.fullmatch(r"[0-9a-f]{16}", made)


def test_errors_echo_the_request_id_too(obs: Observed) -> None:
    result = obs.http.simulate_post(
        TOKENS, body="grant_type=magic", headers={**basic(), "X-Request-ID": "r-1"}
    )
    assert result.status_code == 400 and result.headers["X-Request-ID"] == "r-1"
    assert obs.http.simulate_get("/nowhere", headers={"X-Request-ID": "r-2"}).headers["X-Request-ID"] == "r-2"


# --- the access log -------------------------------------------------------------------------------


def test_one_json_line_per_request_with_its_labels(obs: Observed) -> None:
    assert (
        obs.http.simulate_post(TOKENS, body="grant_type=client_credentials", headers=basic()).status_code
        == 200
    )
    assert (
        obs.http.simulate_post(
            TOKENS + "/", body="grant_type=client_credentials", headers=basic("testclient", "wrong")
        ).status_code
        == 401
    )
    obs.http.simulate_get("/.well-known/openid-configuration")
    ok, refused, metadata = obs.log()
    assert set(ok) == set(refused) == set(metadata) == LOG_FIELDS
    assert ok["method"] == "POST" and ok["path"] == TOKENS and ok["status"] == 200
    assert (ok["endpoint"], ok["grant"], ok["error"], ok["client"]) == (
        "token",
        "client_credentials",
        None,
        "127.0.0.1",
    )
    assert ok["ms"] > 0 and abs(ok["ts"] - time.time()) < 60
    assert ok["client_id"] == "testclient"  # the authenticated client
    assert (refused["status"], refused["error"], refused["path"]) == (401, "invalid_client", TOKENS)
    assert refused["client_id"] is None and metadata["client_id"] is None  # never a claimed one
    assert (metadata["endpoint"], metadata["grant"], metadata["status"]) == ("metadata", "-", 200)


def test_no_secret_token_password_code_or_query_reaches_the_log(settings: Settings, keyring: KeyRing) -> None:
    obs = observed(settings, keyring, refresh_grace_seconds=0)
    secrets_sent: list[str] = ["testpassword", "Wr0ngSecretValue", "QueryStringSecret", "PathSecretValue"]
    http = obs.http
    # Client secrets: Basic, body, wrong; a secret in the query string; one in an unknown path.
    call(http, TOKENS, {"grant_type": "client_credentials"})
    call(
        http,
        TOKENS,
        {"grant_type": "client_credentials", "client_id": "testclient", "client_secret": "testpassword"},
        auth=None,
    )
    call(http, TOKENS, {"grant_type": "client_credentials"}, auth=("testclient", "Wr0ngSecretValue"))
    http.simulate_post(
        TOKENS,
        query_string="client_secret=QueryStringSecret",
        headers=basic(),
        body="grant_type=client_credentials",
    )
    http.simulate_get("/api/v1/tokens/PathSecretValue")
    # Passwords, refresh tokens (rotated, reused, revoked), access tokens, codes.
    access, first_refresh = tokens_of(login(http))
    second = refresh(http, first_refresh).json["refresh_token"]
    refresh(http, first_refresh)  # reuse: the family is revoked (and logged as a warning)
    login(http, password="Wr0ngSecretValue")
    call(http, INTROSPECT, {"token": access})
    call(http, REVOKE, {"token": second})
    code = authflow.code_from(authflow.authorize(http, CODE_QUERY))
    exchanged = call(
        http,
        TOKENS,
        {"grant_type": "authorization_code", "code": code, "redirect_uri": "https://www.example.com"},
    )
    secrets_sent += [access, first_refresh, second, code, *tokens_of(exchanged)]
    secrets_sent += [part for token in (first_refresh, second) for part in token.split(".")]
    log = "\n".join(obs.lines)
    for secret in secrets_sent:
        assert secret not in log
    assert "?" not in log and "client_secret" not in log
    # One line per request (the authorize page is a GET and a POST).
    assert len(obs.lines) == 14 and all(set(json.loads(line)) == LOG_FIELDS for line in obs.lines)
    assert json.loads(obs.lines[4])["path"] == "unmatched"


def test_a_forwarded_client_address_cannot_break_the_json(settings: Settings, keyring: KeyRing) -> None:
    # Behind a trusted proxy the logged address comes from X-Forwarded-For, text the client wrote.
    obs = observed(settings, keyring, trusted_proxies=("127.0.0.1",))
    hostile = 'evil" "status": 500 } \\ \t x'
    obs.http.simulate_get("/healthz", headers={"X-Forwarded-For": hostile})
    (line,) = obs.log()
    assert line["client"] == hostile.strip() and line["status"] == 200 and set(line) == LOG_FIELDS


def test_no_access_log_unless_one_is_given(settings: Settings, keyring: KeyRing, store: Any) -> None:
    http = testing.TestClient(create_app(settings, keyring, store))
    assert http.simulate_get("/healthz").status_code == 200  # and nothing to write to


# --- metrics --------------------------------------------------------------------------------------


def test_metrics_move_after_a_token_request(obs: Observed) -> None:
    labels = {"endpoint": "token", "grant": "client_credentials", "status": "200"}
    assert obs.metric("jwtauth_tokens_issued_total", grant="client_credentials") == 0
    for _ in range(3):
        assert (
            obs.http.simulate_post(TOKENS, body="grant_type=client_credentials", headers=basic()).status_code
            == 200
        )
    page = obs.management.simulate_get("/metrics")
    assert page.status_code == 200 and page.headers["Content-Type"].startswith("text/plain")
    assert page.headers["Cache-Control"] == "no-store"
    assert sample(page.text, "jwtauth_tokens_issued_total", grant="client_credentials") == 3
    assert sample(page.text, "jwtauth_request_duration_seconds_count", **labels) == 3
    assert sample(page.text, "jwtauth_request_duration_seconds_bucket", **labels, le="+Inf") == 3


def test_grant_events_are_counted(settings: Settings, keyring: KeyRing) -> None:
    obs = observed(settings, keyring, refresh_grace_seconds=0)
    http = obs.http
    _, first = tokens_of(login(http))
    second = refresh(http, first).json["refresh_token"]
    assert obs.metric("jwtauth_refresh_rotations_total") == 1
    assert refresh(http, first).status_code == 400  # reuse: the family is revoked
    assert obs.metric("jwtauth_reuse_detected_total", kind="refresh_token") == 1
    _, third = tokens_of(login(http))
    assert call(http, REVOKE, {"token": third}).status_code == 200
    assert call(http, REVOKE, {"token": second}).status_code == 200  # already dead: no revocation
    assert obs.metric("jwtauth_revocations_total") == 1
    code = authflow.code_from(authflow.authorize(http, CODE_QUERY))
    exchange = {"grant_type": "authorization_code", "code": code, "redirect_uri": "https://www.example.com"}
    assert call(http, TOKENS, exchange).status_code == 200
    assert call(http, TOKENS, exchange).status_code == 400
    assert obs.metric("jwtauth_reuse_detected_total", kind="authorization_code") == 1
    assert obs.metric("jwtauth_tokens_issued_total", grant="password") == 2
    assert obs.metric("jwtauth_tokens_issued_total", grant="refresh_token") == 1
    assert obs.metric("jwtauth_tokens_issued_total", grant="authorization_code") == 1


def test_implicit_tokens_invalid_clients_and_rate_limits_are_counted(
    settings: Settings, keyring: KeyRing
) -> None:
    obs = observed(settings, keyring, max_failures=1)
    result = authflow.authorize(obs.http, {**CODE_QUERY, "response_type": "token"})
    assert result.status_code == 303 and "#access_token=" in result.headers["Location"]
    assert obs.metric("jwtauth_tokens_issued_total", grant="implicit") == 1
    call(obs.http, INTROSPECT, {"token": "x"}, auth=("testclient", "wrong"))
    assert obs.metric("jwtauth_invalid_client_total", endpoint="introspect") == 1
    assert login(obs.http, password="wrong").status_code == 400
    limited = login(obs.http, password=PASSWORD)
    assert limited.status_code == 429
    assert obs.metric("jwtauth_rate_limited_total", endpoint="token") == 1
    limited_labels = {"endpoint": "token", "grant": "password", "status": "429"}
    assert obs.metric("jwtauth_request_duration_seconds_count", **limited_labels) == 1


def test_store_errors_are_counted(obs: Observed) -> None:
    obs.server.connected = False  # every command now fails with a ConnectionError
    assert login(obs.http).status_code == 503
    assert obs.metric("jwtauth_store_errors_total", endpoint="token") == 1
    assert obs.log()[-1]["error"] == "temporarily_unavailable"  # /metrics is another listener


def test_a_signer_change_is_counted(settings: Settings, tmp_path: Path) -> None:
    now = [time.time()]
    directory = tmp_path / "keys"
    keyfolder.ensure(directory, "ES256", retire_after=960, now=now[0])
    ring = KeyRing(directory, retire_after=960, check_interval=0, clock=lambda: now[0])
    obs = observed(settings, ring)
    keyfolder.rotate(directory, "EdDSA", publish_ahead=10, retire_after=960, now=now[0])
    ring.signer()
    assert obs.metric("jwtauth_key_rotations_total") == 0  # published, not signing yet
    now[0] += 60
    assert ring.signer() is not None and ring.signer().alg == "EdDSA"  # type: ignore[union-attr]
    assert obs.metric("jwtauth_key_rotations_total") == 1


def test_tokens_issued_are_the_token_endpoints_2xx_answers_by_grant() -> None:
    # The counter is read off the request histogram at scrape time (TokensIssued): only answers
    # below 300 of the token endpoint count, by grant, beside the implicit tokens counted apart.
    metrics = Metrics()
    answers = [("token", "password", 200), ("token", "password", 200), ("token", "password", 400),
               ("token", "refresh_token", 429), ("token", "client_credentials", 200),
               ("introspect", "-", 200)]  # fmt: skip
    for endpoint, grant, status in answers:
        metrics.request(endpoint, grant, status, 0.001)
    metrics.token_issued("implicit")
    page = metrics.render()[0].decode()
    assert sample(page, "jwtauth_tokens_issued_total", grant="password") == 2
    assert sample(page, "jwtauth_tokens_issued_total", grant="client_credentials") == 1
    assert sample(page, "jwtauth_tokens_issued_total", grant="implicit") == 1
    assert sample(page, "jwtauth_tokens_issued_total", grant="refresh_token") == 0
    assert sample(page, "jwtauth_tokens_issued_total", grant="-") == 0
    assert page.count("# TYPE jwtauth_tokens_issued_total counter") == 1
    assert metrics.render()[0].decode() == page  # a scrape changes nothing it reads


def test_tokens_issued_adds_to_a_counted_grant_and_appears_with_no_implicit_token() -> None:
    metrics = Metrics()
    assert "jwtauth_tokens_issued_total{" not in metrics.render()[0].decode()  # nothing issued yet
    metrics.request("token", "password", 200, 0.001)
    assert sample(metrics.render()[0].decode(), "jwtauth_tokens_issued_total", grant="password") == 1
    metrics.token_issued("password")  # a grant counted both ways is added up, not shown twice
    page = metrics.render()[0].decode()
    assert sample(page, "jwtauth_tokens_issued_total", grant="password") == 2
    assert page.count('jwtauth_tokens_issued_total{grant="password"}') == 1


def test_each_app_has_its_own_metrics(settings: Settings, keyring: KeyRing) -> None:
    a, b = observed(settings, keyring), observed(settings, keyring)
    a.http.simulate_post(TOKENS, body="grant_type=client_credentials", headers=basic())
    assert a.metric("jwtauth_tokens_issued_total", grant="client_credentials") == 1
    assert b.metric("jwtauth_tokens_issued_total", grant="client_credentials") == 0


# --- a real jwtauth serve: two workers, one /metrics ---------------------------------------------


@pytest.mark.e2e
@pytest.mark.redis
def test_metrics_add_up_across_two_workers(
    serve: Callable[..., Any], real_redis: tuple[Any, str], tmp_path: Path
) -> None:
    _, prefix = real_redis
    metrics_tmp = tmp_path / "tmp"
    metrics_tmp.mkdir()
    env = {"JWTAUTH_REDIS_URL": REDIS_URL, "JWTAUTH_REDIS_PREFIX": prefix, "TMPDIR": str(metrics_tmp)}
    requests_sent = 40
    management = free_port()
    with serve(workers=2, env=env, args=("--metrics-port", str(management))) as server:
        assert requests.get(server.base + "/metrics", timeout=5).status_code == 404  # not public
        (folder,) = metrics_tmp.iterdir()  # the run's multiprocess folder
        token = server.base + TOKENS
        for _ in range(requests_sent):  # a new connection each: the kernel spreads them
            answer = requests.post(
                token,
                data={"grant_type": "client_credentials"},
                auth=("testclient", "testpassword"),
                timeout=5,
            )
            assert answer.status_code == 200, answer.text
        login_body = {"grant_type": "password", "username": USER, "password": PASSWORD}
        logged_in = requests.post(token, data=login_body, auth=("testclient", "testpassword"), timeout=5)
        again = {"grant_type": "refresh_token", "refresh_token": logged_in.json()["refresh_token"]}
        rotated = requests.post(token, data=again, auth=("testclient", "testpassword"), timeout=5)
        assert rotated.status_code == 200, rotated.text
        per_worker = [issued_in(path) for path in folder.glob("histogram_*.db")]
        assert len(per_worker) == 2 and all(per_worker), per_worker  # both workers issued tokens
        for _ in range(6):  # whichever worker answers, it reports both
            page = requests.get(f"http://127.0.0.1:{management}/metrics", timeout=5).text
            assert sample(page, "jwtauth_tokens_issued_total", grant="client_credentials") == requests_sent
            assert sample(page, "jwtauth_refresh_rotations_total") == 1
            assert sample(page, "jwtauth_store_up") == 1
            assert "# TYPE granian_blocking_queue gauge" in page  # granian's own, passed through
    assert not metrics_tmp.exists() or not any(metrics_tmp.iterdir())  # removed at exit
    lines = [json.loads(line) for line in server.output().splitlines() if line.startswith("{")]
    tokens = [line for line in lines if line.get("endpoint") == "token"]  # access lines, not audit
    assert len(tokens) == requests_sent + 2 and len({line["request_id"] for line in tokens}) == len(tokens)
    output = server.output()
    assert logged_in.json()["refresh_token"] not in output and "testpassword" not in output


def issued_in(path: Path) -> float:
    """Return the client_credentials tokens one worker's histogram file counts (its 200s' buckets)."""
    from prometheus_client.mmap_dict import MmapedDict

    from jwtauth.observability import LATENCY

    return sum(
        value
        for key, value, _, _ in MmapedDict.read_all_values_from_file(str(path))  # type: ignore[no-untyped-call]
        if all(part in key for part in (f'"{LATENCY}_bucket"', '"client_credentials"', '"200"'))
    )


def test_stdout_log_writes_whole_lines(tmp_path: Path) -> None:
    from jwtauth.observability import stdout_log

    target = tmp_path / "log"
    with open(target, "wb") as out:
        write = stdout_log(out.fileno())
        write(json.dumps({"a": 1}))
        write("second")
    assert target.read_text() == '{"a": 1}\nsecond\n'


def test_stdout_log_never_raises() -> None:
    from jwtauth.observability import stdout_log

    stdout_log(10_000)("a closed descriptor")  # EBADF is swallowed: a request never fails on it
