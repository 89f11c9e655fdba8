"""Packaging facts: one version, `jwtauth --version`, the license, pins inside the declared ranges."""

from __future__ import annotations

import tomllib
from importlib.metadata import version

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

import jwtauth
from jwtauth.cli import main as cli
from tests.helpers import ROOT

PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())


def test_the_version_lives_in_one_place(capsys: pytest.CaptureFixture[str]) -> None:
    assert "version" not in PYPROJECT["project"] and "version" in PYPROJECT["project"]["dynamic"]
    assert version("jwtauth-server") == jwtauth.__version__  # the installed metadata read it
    with pytest.raises(SystemExit) as info:
        cli.main(["--version"])
    assert info.value.code == 0 and capsys.readouterr().out.strip() == f"jwtauth {jwtauth.__version__}"
    assert f"## {jwtauth.__version__}" in (ROOT / "CHANGELOG.md").read_text()


def test_the_license_file_matches_the_metadata() -> None:
    assert PYPROJECT["project"]["license"] == "MIT"
    assert (ROOT / "LICENSE").read_text().startswith("MIT License")


def test_every_runtime_dependency_is_bounded_and_pinned_inside_its_range() -> None:
    # The otel extra runs in production too (jwtauth-server[otel]): bounded and pinned like the rest.
    runtime = [*PYPROJECT["project"]["dependencies"], *PYPROJECT["project"]["optional-dependencies"]["otel"]]
    requirements = {canonicalize_name(r.name): r for r in map(Requirement, runtime)}
    pins = {}
    for line in (ROOT / "deploy" / "constraints.txt").read_text().splitlines():
        if line and not line.startswith("#"):
            name, _, pinned = line.partition("==")
            pins[canonicalize_name(name)] = pinned
    for name, requirement in requirements.items():
        assert name in pins, f"{name} is not pinned in deploy/constraints.txt"
        assert requirement.specifier.contains(pins[name]), (name, pins[name], str(requirement.specifier))
        has_floor = any(s.operator == ">=" for s in requirement.specifier)
        has_cap = any(s.operator == "<" for s in requirement.specifier)
        assert has_floor and (has_cap or name == "cryptography"), name  # see the comment in pyproject.toml
