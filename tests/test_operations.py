"""The operations layer: what a door may do, given its caller."""

from __future__ import annotations

from typing import Any

import pytest

from support import HomeBuilder
from tiergate.credentials import Credentials
from tiergate.errors import ActorMismatchError, RefusedError
from tiergate.operations import Caller, Operations

GATHER = {"summary": "The ticket says the export fails.", "severity": "S3"}


def _caller(engine: Any, principal: str) -> tuple[Caller, str]:
    credentials = Credentials(engine)
    issued = credentials.issue_token(principal, by="os:test")
    return Caller.from_credential(credentials.authenticate(issued["token"])), issued["id"]


def test_a_token_acts_as_its_principal_and_every_entry_records_its_door(engine: Any) -> None:
    ops = Operations(engine)
    bot, bot_token = _caller(engine, "agent:bot")
    run = ops.start(bot, "demo", {"ticket_id": "T-1"})
    assert run["started_by"] == "agent:bot"
    ops.complete(bot, run["id"], "gather", GATHER)
    entries = engine.log(run["id"])
    assert {e["door"] for e in entries} == {f"token:{bot_token}"}
    assert engine.verify_log()["ok"]


def test_an_agents_token_cannot_complete_a_persons_step(engine: Any) -> None:
    ops = Operations(engine)
    bot, _ = _caller(engine, "agent:bot")
    run = ops.start(bot, "demo", {"ticket_id": "T-1"})["id"]
    ops.complete(bot, run, "gather", GATHER)
    ops.skip(bot, run, "extra", "not needed")
    with pytest.raises(RefusedError) as err:
        ops.complete(bot, run, "review", {"approved": True})
    assert err.value.reason == "actor_not_allowed"
    with pytest.raises(ActorMismatchError) as mismatch:
        ops.complete(bot, run, "review", {"approved": True}, actor="human:alice")
    assert mismatch.value.code == "actor_mismatch"
    assert "agent:bot" in mismatch.value.message and "human:alice" in mismatch.value.message
    last = engine.log(run)[-1]
    assert (last["event"], last["actor"], last["step"], last["detail"]["reason"], last["detail"]["claimed"]) == \
        ("refused", "agent:bot", "review", "actor_mismatch", "human:alice")
    assert engine.status(run).to_dict()["steps"][2]["state"] == "ready"  # nothing moved

    alice, alice_token = _caller(engine, "human:alice")
    done = ops.complete(alice, run, "review", {"approved": True}, actor="human:alice")  # naming oneself is fine
    assert done["status"] == "completed"
    assert engine.log(run)[-2]["door"] == f"token:{alice_token}"


def test_a_mismatch_outside_a_run_is_recorded_with_the_credentials(engine: Any) -> None:
    ops = Operations(engine)
    bot, token_id = _caller(engine, "agent:bot")
    with pytest.raises(ActorMismatchError):
        ops.start(bot, "demo", {"ticket_id": "T-1"}, actor="human:alice")
    assert engine.runs() == []
    last = Credentials(engine).events()[-1]
    assert (last["event"], last["principal"], last["token"], last["door"], last["detail"]["claimed"]) == \
        ("actor_mismatch", "agent:bot", token_id, f"token:{token_id}", "human:alice")


def test_the_direct_door_takes_the_claimed_actor(demo_home: HomeBuilder, make_engine: Any) -> None:
    engine = make_engine(demo_home)
    ops = Operations(engine)
    run = ops.start(Caller(), "demo", {"ticket_id": "T-2"}, actor="agent:ops-script")
    assert run["started_by"] == "agent:ops-script"
    assert {e["door"] for e in engine.log(run["id"])} == {"direct"}
    with pytest.raises(ValueError):
        Caller(door="token:abc")  # only the direct door has no principal
