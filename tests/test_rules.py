"""Issue 12, "the rules hold": canonical actor ids, pinned snapshots re-hashed, retry rules,
plain tasks, other expression languages named, and routing to a tier without a definition."""

from __future__ import annotations

from typing import Any, Callable

import pytest
import sqlalchemy as sa

from support import DEMO, ROLES, HomeBuilder
from tiergate.actors import canonical_actor, same_actor
from tiergate.engine import Engine
from tiergate.errors import DefinitionError, RefusedError, UsageError

GATHER = {"summary": "Payslips are wrong", "severity": "S2"}


@pytest.mark.parametrize("spelling", ["human:alice", "human:Alice", "HUMAN:ALICE", "human:ａｌｉｃｅ", " human:alice "])
def test_actor_spellings_have_one_canonical_form(spelling: str) -> None:
    assert canonical_actor(spelling) == "human:alice"
    assert same_actor(spelling, "human:alice")


@pytest.mark.parametrize("spelling", ["human:alice.", "human:.alice", "human:a..lice", "human:al--ice", "human:ǅ"])
def test_actor_spellings_that_are_not_one_form_are_refused(spelling: str) -> None:
    with pytest.raises(UsageError) as err:
        canonical_actor(spelling)
    assert err.value.code == "actor_invalid"


@pytest.mark.parametrize("second", ["human:alice", "human:Alice", "human:ALICE"])
def test_four_eyes_compares_people_not_spellings(engine: Engine, second: str) -> None:
    run = engine.start("demo", {"ticket_id": "T-1"}, actor="human:alice")
    engine.complete(run.id, "gather", GATHER, actor="human:alice")
    engine.skip(run.id, "extra", "not needed", actor="human:alice")
    with pytest.raises(RefusedError) as err:
        engine.complete(run.id, "review", {"approved": True}, actor=second)
    assert err.value.reason == "same_actor"
    with pytest.raises(UsageError):
        engine.complete(run.id, "review", {"approved": True}, actor="human:alice.")
    assert engine.status(run.id).steps[2].state == "ready"
    done = engine.complete(run.id, "review", {"approved": True}, actor="human:Bob")
    assert done.status == "completed" and done.steps[2].actor == "human:bob"


def test_roles_are_matched_case_folded_and_colliding_members_are_refused(home: HomeBuilder,
                                                                         make_engine: Callable[..., Engine]) -> None:
    home.checklist("demo", DEMO)
    home.write("tiers/roles.yaml", ROLES.replace("human:bob]", "human:Bob]"))
    engine = make_engine(home)
    assert engine.check() == [] and engine.definitions.roles.roles["lead"].members == ["human:alice", "human:bob"]
    home.write("tiers/roles.yaml", ROLES.replace("human:carol,", "human:carol, human:Alice,"))
    problems = [str(p) for p in engine.check()]
    assert problems == ["tiers/roles.yaml:7: 'human:Alice' and 'human:alice' (at /roles/lead/members/0) are the "
                        "same actor, human:alice: actor ids are compared case-folded and NFKC-normalised. Write "
                        "every member one way, as human:alice."]
