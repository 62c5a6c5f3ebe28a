"""The work inbox and claims: who may do which ready step now, and who has taken it on."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any, Callable

import pytest

from support import CLIResult, HomeBuilder, events
from tiergate.errors import RefusedError

GATHER = {"summary": "The export fails for every client.", "severity": "S3"}


def _steps(items: list[dict[str, Any]], run: str) -> list[str]:
    return [i["step"] for i in items if i["run"] == run]


def test_the_inbox_lists_what_each_actor_may_do_now(engine: Any) -> None:
    first = engine.start("demo", {"ticket_id": "T-1"}, actor="agent:bot").id
    second = engine.start("demo", {"ticket_id": "T-2"}, actor="agent:bot").id
    items = engine.inbox("agent:bot")
    assert [(i["run"], i["step"]) for i in items] == [(first, "gather"), (second, "gather")]  # oldest first
    assert set(items[0]) >= {"run", "process", "step", "ready_at", "claimed_by", "due"}
    assert items[0]["claimed_by"] is None and items[0]["process"] == "demo"
    assert engine.inbox("human:alice")[0]["step"] == "gather"  # anyone may gather
    engine.complete(first, "gather", GATHER, actor="agent:bot")
    assert _steps(engine.inbox("agent:bot"), first) == ["extra"]
    engine.skip(first, "extra", "not needed", actor="agent:bot")
    assert _steps(engine.inbox("agent:bot"), first) == []  # review needs a person of the lead role
    assert _steps(engine.inbox("human:carol"), first) == []  # not a lead
    assert _steps(engine.inbox("human:alice"), first) == ["review"]


def test_a_claimed_step_is_refused_to_another_until_released(engine: Any) -> None:
    run = engine.start("demo", {"ticket_id": "T-1"}, actor="agent:bot").id
    claimed = engine.claim(run, "gather", actor="agent:bot")
    assert claimed["claimed_by"] == "agent:bot"
    assert _steps(engine.inbox("agent:other"), run) == []
    assert engine.inbox("agent:bot")[0]["claimed_by"] == "agent:bot"
    with pytest.raises(RefusedError) as err:
        engine.complete(run, "gather", GATHER, actor="agent:other")
    assert err.value.reason == "claimed_by_other" and "agent:bot" in err.value.message
    with pytest.raises(RefusedError) as again:
        engine.claim(run, "gather", actor="agent:other")
    assert again.value.reason == "claimed_by_other"
    engine.unclaim(run, "gather", actor="agent:bot")
    engine.complete(run, "gather", GATHER, actor="agent:other")
    assert [e for e in events(engine, run) if e[0] == "gather"][1:] == [
        ("gather", "claimed", "agent:bot"), ("gather", "refused", "agent:other"), ("gather", "refused", "agent:other"),
        ("gather", "unclaimed", "agent:bot"), ("gather", "step_completed", "agent:other")]
    log = engine.log(run)
    assert [e["detail"].get("reason") for e in log if e["event"] == "refused"] == ["claimed_by_other"] * 2
    assert [e["event"] for e in log if e["step"] == "gather"][:2] == ["step_ready", "claimed"]
    assert engine.verify_log()["ok"]


def test_the_process_owners_role_assigns_and_a_claim_times_out(demo_home: HomeBuilder, make_engine: Any) -> None:
    moment = [datetime(2026, 12, 1, 9, tzinfo=timezone.utc)]
    engine = make_engine(demo_home, clock=lambda: moment[0])
    run = engine.start("demo", {"ticket_id": "T-1"}, actor="agent:bot").id
    engine.complete(run, "gather", GATHER, actor="agent:bot")
    engine.skip(run, "extra", "not needed", actor="agent:bot")
    with pytest.raises(RefusedError) as err:
        engine.assign(run, "review", "human:alice", actor="human:carol")  # carol is no lead (the owner role)
    assert err.value.reason == "actor_not_allowed"
    with pytest.raises(RefusedError) as bot:
        engine.assign(run, "review", "agent:bot", actor="human:bob")  # a person's step
    assert bot.value.reason == "actor_not_allowed"
    assigned = engine.assign(run, "review", "human:alice", actor="human:bob")
    assert assigned["claimed_by"] == "human:alice"
    assert _steps(engine.inbox("human:bob"), run) == []
    with pytest.raises(RefusedError):
        engine.complete(run, "review", {"approved": True}, actor="human:bob")
    moment[0] += engine.claim_timeout + timedelta(seconds=1)
    assert _steps(engine.inbox("human:bob"), run) == ["review"]
    assert engine.complete(run, "review", {"approved": True}, actor="human:bob").status == "completed"
    entry = [e for e in engine.log(run) if e["event"] == "assigned"][0]
    assert (entry["actor"], entry["detail"]["claimed_by"]) == ("human:bob", "human:alice")


def test_inbox_claim_and_unclaim_on_the_command_line(demo_home: HomeBuilder, cli: Callable[..., CLIResult],
                                                      make_engine: Any) -> None:
    run = make_engine(demo_home).start("demo", {"ticket_id": "T-1"}, actor="agent:bot").id
    claimed = cli("claim", run, "gather", "--actor", "human:alice", "--json", home=demo_home)
    assert claimed.returncode == 0 and claimed.json["data"]["claimed_by"] == "human:alice", claimed
    refused = cli("complete", run, "gather", "--evidence", '{"summary": "long enough text", "severity": "S1"}',
                  "--actor", "human:bob", "--json", home=demo_home)
    assert refused.returncode == 1 and refused.json["error"]["details"]["reason"] == "claimed_by_other"
    listed = cli("inbox", "--actor", "human:bob", "--json", home=demo_home).json["data"]
    assert [i["step"] for i in listed] == []
    people = cli("inbox", "--actor", "human:alice", home=demo_home)
    assert "gather" in people.stdout and "human:alice" in people.stdout
    assert cli("unclaim", run, "gather", "--actor", "human:alice", home=demo_home).returncode == 0
    assert [i["step"] for i in cli("inbox", "--actor", "human:bob", "--json", home=demo_home).json["data"]] == \
        ["gather"]


def test_two_people_claiming_one_step_at_once_get_one_claim(demo_home: HomeBuilder, make_engine: Any) -> None:
    import threading

    first = make_engine(demo_home)
    run = first.start("demo", {"ticket_id": "T-1"}, actor="agent:bot").id
    engines = [make_engine(demo_home) for _ in range(4)]
    barrier = threading.Barrier(len(engines))
    outcomes: list[str] = []

    def claim(engine: Any, who: str) -> None:
        barrier.wait(timeout=120)
        try:
            engine.claim(run, "gather", actor=who)
            outcomes.append("claimed")
        except RefusedError as err:
            outcomes.append(err.reason)

    threads = [threading.Thread(target=claim, args=(e, f"human:p{i}")) for i, e in enumerate(engines)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes) == ["claimed"] + ["claimed_by_other"] * 3
    holders = [e["detail"]["claimed_by"] for e in first.log(run) if e["event"] == "claimed"]
    assert len(holders) == 1 and first.inbox(holders[0])[0]["claimed_by"] == holders[0]
    assert first.verify_log()["ok"]
