"""The prompt / max_age / id_token_hint rules (jwtauth.oidc.prompt; Core §3.1.2.1)."""

from __future__ import annotations

from typing import Any

import pytest

from jwtauth.errors import ConsentRequired, InvalidRequest, LoginRequired
from jwtauth.oidc.prompt import Interaction, Step, decide, interaction
from jwtauth.oidc.session import Session, new_session

NOW = 1_900_000_000.0
SESSION = new_session("alice", "sub-a", now=NOW - 100, ttl=3600, amr=("pwd",)).with_consent(
    "c", "aud", ["openid"]
)


def step(asked: Interaction, session: Session | None, **changes: Any) -> Step:
    args: dict[str, Any] = {
        "client_id": "c", "first_party": False, "audience": "aud", "scope": ["openid"], "hint_subject": None,
        "now": NOW,
    }  # fmt: skip
    return decide(asked, session, **{**args, **changes})


@pytest.mark.parametrize(
    ("params", "session", "changes", "expected"),
    [
        ({}, None, {}, Step.LOGIN),
        ({}, SESSION, {}, Step.GRANT),
        ({}, SESSION, {"scope": ["openid", "email"]}, Step.CONSENT),
        ({}, SESSION, {"client_id": "d"}, Step.CONSENT),
        ({}, SESSION, {"client_id": "d", "first_party": True}, Step.GRANT),
        ({"prompt": "consent"}, SESSION, {}, Step.CONSENT),
        ({"prompt": "login"}, SESSION, {}, Step.LOGIN),
        ({"prompt": "select_account"}, SESSION, {}, Step.LOGIN),
        ({"max_age": "0"}, SESSION, {}, Step.LOGIN),
        ({"max_age": "100"}, SESSION, {}, Step.LOGIN),
        ({"max_age": "101"}, SESSION, {}, Step.GRANT),
        ({}, SESSION, {"hint_subject": "sub-b"}, Step.LOGIN),
        ({"prompt": "none"}, SESSION, {"hint_subject": "sub-a"}, Step.GRANT),
    ],
)
def test_the_step(
    params: dict[str, str], session: Session | None, changes: dict[str, Any], expected: Step
) -> None:
    assert step(interaction(params), session, **changes) is expected


@pytest.mark.parametrize(
    ("params", "session", "changes", "error"),
    [
        ({"prompt": "none"}, None, {}, LoginRequired),
        ({"prompt": "none", "max_age": "0"}, SESSION, {}, LoginRequired),
        ({"prompt": "none"}, SESSION, {"hint_subject": "sub-b"}, LoginRequired),
        ({"prompt": "none"}, SESSION, {"client_id": "d"}, ConsentRequired),
    ],
)
def test_prompt_none_never_shows_a_page(
    params: dict[str, str], session: Session | None, changes: dict[str, Any], error: type[Exception]
) -> None:
    with pytest.raises(error):
        step(interaction(params), session, **changes)


@pytest.mark.parametrize(
    "params",
    [{"prompt": "none login"}, {"prompt": "bogus"}, {"max_age": "-1"}, {"max_age": "1.5"}, {"max_age": "٣"}],
)
def test_bad_interaction_parameters_are_invalid_requests(params: dict[str, str]) -> None:
    with pytest.raises(InvalidRequest):
        interaction(params)


def test_the_parameters_read() -> None:
    asked = interaction({"prompt": "login consent", "max_age": "30", "login_hint": "bob"})
    assert asked == Interaction(frozenset({"login", "consent"}), 30, "bob", None)
