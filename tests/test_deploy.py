"""Checks of deploy/: the Kubernetes manifest parses and agrees with the server; the Dockerfile too.

Neither docker nor a cluster runs here, so these read the files: what they can catch is a
manifest that does not parse, probes on the wrong paths or port, the keys not mounted where
JWTAUTH_KEYS_DIR points, or a Dockerfile that copies files the repository does not have.
"""

from __future__ import annotations

import json
import shlex
from pathlib import Path
from typing import Any

import pytest
import yaml

from jwtauth.cli.main import parser
from tests.helpers import ROOT

DEPLOY = ROOT / "deploy"
ALL_INTERFACES = "0.0.0.0"  # noqa: S104  # a container must listen beyond its own loopback


@pytest.fixture(scope="module")
def documents() -> dict[str, dict[str, Any]]:
    with open(DEPLOY / "kubernetes.yaml", encoding="utf-8") as handle:
        docs = [d for d in yaml.safe_load_all(handle) if d is not None]
    return {d["kind"]: d for d in docs}


@pytest.fixture(scope="module")
def container(documents: dict[str, dict[str, Any]]) -> dict[str, Any]:
    (only,) = documents["Deployment"]["spec"]["template"]["spec"]["containers"]
    result: dict[str, Any] = only
    return result


def env_of(container: dict[str, Any]) -> dict[str, Any]:
    return {e["name"]: e for e in container["env"]}


def test_manifest_has_the_expected_objects(documents: dict[str, dict[str, Any]]) -> None:
    assert set(documents) == {"Deployment", "Service", "PodDisruptionBudget"}
    labels = documents["Deployment"]["spec"]["template"]["metadata"]["labels"]
    assert documents["Deployment"]["spec"]["selector"]["matchLabels"].items() <= labels.items()
    assert documents["Service"]["spec"]["selector"].items() <= labels.items()
    replicas = documents["Deployment"]["spec"]["replicas"]
    assert documents["PodDisruptionBudget"]["spec"]["minAvailable"] < replicas


def test_probes_hit_the_health_endpoints_on_the_served_port(container: dict[str, Any]) -> None:
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    for probe in ("readinessProbe", "livenessProbe"):
        assert container[probe]["httpGet"]["port"] == "http"
    args = parser().parse_args(container["args"])  # the real CLI accepts the arguments
    assert args.command == "serve" and args.port == ports["http"] and args.host == ALL_INTERFACES


def test_metrics_are_scraped_from_the_management_port_only(
    documents: dict[str, dict[str, Any]], container: dict[str, Any]
) -> None:
    args = parser().parse_args(container["args"])
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert args.metrics_port == ports["management"] != ports["http"]
    annotations = documents["Deployment"]["spec"]["template"]["metadata"]["annotations"]
    assert annotations["prometheus.io/port"] == str(args.metrics_port)
    # The Service (what the load balancer reaches) routes the public port only.
    assert [p["targetPort"] for p in documents["Service"]["spec"]["ports"]] == ["http"]


def test_keys_come_from_a_secret_mounted_at_the_keys_dir(
    documents: dict[str, dict[str, Any]], container: dict[str, Any]
) -> None:
    pod = documents["Deployment"]["spec"]["template"]["spec"]
    volumes = {v["name"]: v for v in pod["volumes"]}
    mounts = {m["mountPath"]: m for m in container["volumeMounts"]}
    keys_dir = env_of(container)["JWTAUTH_KEYS_DIR"]["value"]
    mount = mounts[keys_dir]
    assert mount["readOnly"] is True
    assert volumes[mount["name"]]["secret"]["secretName"] == "jwtauth-keys"
    # Group-readable, and the server's group is the pod's fsGroup.
    assert volumes[mount["name"]]["secret"]["defaultMode"] == 0o440
    assert pod["securityContext"]["fsGroup"] == pod["securityContext"]["runAsUser"]
    config = Path(env_of(container)["JWTAUTH_CONFIG"]["value"])
    assert str(config.parent) in mounts


def test_redis_url_comes_from_a_secret(container: dict[str, Any]) -> None:
    env = env_of(container)
    assert env["JWTAUTH_REDIS_URL"]["valueFrom"]["secretKeyRef"] == {"name": "jwtauth-redis", "key": "url"}
    assert env["JWTAUTH_ISSUER"]["value"].startswith("https://")


def test_workers_match_the_cpu_limit(container: dict[str, Any]) -> None:
    args = parser().parse_args(container["args"])
    assert args.workers == int(container["resources"]["limits"]["cpu"])


def dockerfile() -> list[tuple[str, str]]:
    """Return the Dockerfile's instructions as (KEYWORD, arguments), continuation lines joined."""
    text = (DEPLOY / "Dockerfile").read_text(encoding="utf-8").replace("\\\n", " ")
    lines = [line.strip() for line in text.splitlines()]
    return [
        (word.upper(), rest.strip())
        for word, _, rest in (line.partition(" ") for line in lines if line and not line.startswith("#"))
    ]


def test_dockerfile_copies_what_exists_and_runs_serve() -> None:
    instructions = dockerfile()
    for keyword, rest in instructions:
        if keyword == "COPY" and not rest.startswith("--from"):
            for source in shlex.split(rest)[:-1]:
                assert (ROOT / source).exists(), source
    found = dict(instructions)  # the last of each keyword wins, as in docker
    assert json.loads(found["ENTRYPOINT"]) == ["jwtauth"]
    command = json.loads(found["CMD"])
    args = parser().parse_args(command)
    assert args.command == "serve" and args.host == ALL_INTERFACES
    assert found["EXPOSE"].split() == [str(args.port), str(args.metrics_port)]
    assert found["USER"].split(":")[0] not in ("0", "root")
    env = dict(shlex.split(item)[0].split("=", 1) for item in shlex.split(found["ENV"]))
    assert env["JWTAUTH_KEYS_DIR"] == "/etc/jwtauth/keys"
