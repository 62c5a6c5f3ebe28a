"""A Tier 1 run's step records are frozen at the end of each move and shared by the next one
(``tiergate.bpmn.records``): a step copies only the records it changes, never changes a shared
one, and the state's text, its answer's step views and what a door sees are what a run read
afresh from the database gives."""

from __future__ import annotations

import copy
import json
import pickle
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest
from test_tier1_instances import camunda_mi, repeated
from tier1_helpers import GATE_NOTE, bpmn, chain, tier1_home, user

from tiergate.actors import Actor
from tiergate.bpmn import records
from tiergate.bpmn.records import FrozenRecords
from tiergate.engine import Engine
from tiergate.jsontext import Frozen, dumps
from tiergate.runners.base import RunContext
from tiergate.runners.bpmn import BpmnRunner

BODY = ('<bpmn:startEvent id="start"/>' + user("prepare", "Prepare the rollout")
        + repeated("verify", camunda_mi("tenants", "tenant"), name="Verify tenant", gate=GATE_NOTE,
                   distinct_from="prepare", docs="Check {{ data.customer }} for {{ run.process }}")
        + repeated("sign", camunda_mi("tenants", "tenant"), name="Sign tenant",
                   docs="{% for id, s in steps.items() if s.state == 'done' %}{{ id }} {% endfor %}")
        + '<bpmn:endEvent id="end"/>' + chain("start", "prepare", "verify", "sign", "end"))
TENANTS = ["acme", "globex", "initech", "umbrella", "hooli"]


def test_a_frozen_record_refuses_changes_and_copies_as_a_plain_dict() -> None:
    record = Frozen.of({"status": "ready", "item": "Zürich", "evidence": {"n": [1, 2.5, None]}})
    assert record.text == json.dumps(dict(record)) and dumps({"steps": {"v[0]": record}}) == json.dumps(
        {"steps": {"v[0]": dict(record)}})
    for change in (lambda: record.update(status="done"), lambda: record.__setitem__("status", "done"),
                   lambda: record.pop("status"), lambda: record.setdefault("x", 1), lambda: record.clear(),
                   lambda: record.__delitem__("item"), lambda: record.popitem()):
        with pytest.raises(TypeError, match="copy it"):
            change()
    assert record["status"] == "ready" and record.text == json.dumps(dict(record))
    for copied in (copy.copy(record), copy.deepcopy(record), pickle.loads(pickle.dumps(record)), dict(record)):
        assert type(copied) is dict and copied == record
        copied["status"] = "done"  # a copy is the caller's to change
    assert record["status"] == "ready"


def test_frozen_records_spell_their_text_from_the_members_of_the_ones_they_were_copied_from() -> None:
    def plain(steps: dict[str, Any]) -> str:
        return json.dumps({key: dict(record) for key, record in steps.items()})

    state: dict[str, Any] = {"steps": {f"v[{i}]": {"status": "ready", "item": f"Zürich {i}"} for i in range(5)}}
    records.freeze(state)
    first = state["steps"]
    assert type(first) is FrozenRecords and first.text == plain(first)
    second: dict[str, Any] = {"steps": records.copied(first)}
    records.editable(second, "v[2]")["status"] = "done"
    records.freeze(second)
    after = second["steps"]
    assert after.text == plain(after) and json.loads(after.text)["v[2]"]["status"] == "done"
    assert after.members[1] is first.members[1] and after.members[2] is not first.members[2]
    assert first.text == plain(first) and first["v[2]"]["status"] == "ready"  # the one copied from is as it was
    with pytest.raises(TypeError, match="copy it"):
        after["v[9]"] = {"status": "ready"}
    third: dict[str, Any] = {"steps": records.copied(after)}
    records.editable(third, "w", {"status": "locked"})  # a record added: every member spelled again
    del third["steps"]["v[0]"]
    records.freeze(third)
    assert third["steps"].text == plain(third["steps"]) and list(third["steps"])[-1] == "w"
    assert dumps({"a": 1, "steps": third["steps"]}) == json.dumps({"a": 1, "steps": json.loads(third["steps"].text)})


@pytest.mark.parametrize("change", ["editable", "set", "update", "setdefault", "swap", "pop and set", "ior"])
def test_frozen_records_after_any_change_of_their_copy_spell_json_dumps(change: str) -> None:
    """A copy notes the records set through it, so freezing it spells those alone again; any other change
    (a key dropped, another added in its place: as many records as before) is found by comparing them all."""
    state: dict[str, Any] = {"steps": {f"v[{i}]": {"status": "ready", "item": i} for i in range(6)}}
    records.freeze(state)
    first = state["steps"]
    copy_of: dict[str, Any] = {"steps": records.copied(first)}
    steps = copy_of["steps"]
    if change == "editable":
        records.editable(copy_of, "v[4]")["status"] = "done"
    elif change == "set":
        steps["v[1]"], steps["v[3]"] = {"status": "done"}, first["v[3]"]  # one replaced, one set to itself
    elif change == "update":
        steps.update({"v[0]": {"status": "skipped"}})
    elif change == "setdefault":
        steps.setdefault("v[9]", {"status": "locked"})
    elif change == "swap":  # as many records as before, another key: every member spelled again
        del steps["v[2]"]
        steps["w"] = {"status": "ready"}
    elif change == "pop and set":
        steps["v[5]"] = steps.pop("v[0]")
    else:
        steps |= {"v[2]": {"status": "done"}}
    records.freeze(copy_of)
    after = copy_of["steps"]
    assert type(after) is FrozenRecords and list(after) == list(steps)
    assert after.text == json.dumps({key: dict(record) for key, record in after.items()})
    assert first.text == json.dumps({key: dict(record) for key, record in first.items()})  # as it was


def _ctx(actor: str) -> RunContext:
    return RunContext(run_id="r-1", actor=Actor.parse(actor), now=datetime.now(timezone.utc))


def test_a_move_shares_the_records_it_leaves_and_never_changes_the_state_it_started_from(
        tmp_path: Path, make_engine: Callable[..., Engine]) -> None:
    engine = make_engine(tier1_home(tmp_path / "home", {"roll": bpmn("roll", BODY)}))
    definition = engine.definitions.process("roll")
    runner = BpmnRunner()
    started = runner.start(definition, {"tenants": TENANTS, "customer": "acme"}, _ctx("agent:a"))
    prepared = runner.complete_step(definition, started.state, "prepare", {}, _ctx("agent:a"))
    before = prepared.state
    text_before = dumps(before)
    after = runner.complete_step(definition, before, "verify[2]", {"note": "initech ok"}, _ctx("human:carol")).state

    assert all(type(record) is Frozen for record in after["steps"].values())
    assert after["steps"]["verify[1]"] is before["steps"]["verify[1]"]  # untouched: shared
    assert after["steps"]["verify[2]"] is not before["steps"]["verify[2]"]
    assert before["steps"]["verify[2]"]["status"] == "ready" and dumps(before) == text_before
    assert after["steps"]["verify[2]"]["status"] == "done"
    assert dumps(after) == json.dumps(json.loads(dumps(after)))  # the spliced text is json.dumps' own

    # the views from shared records (kept beside them) are those of a state read from its text
    fresh = json.loads(dumps(after))
    views = [v.to_dict() for v in runner.steps(definition, after, run={"id": "r-1"})]
    assert views == [v.to_dict() for v in runner.steps(definition, fresh, run={"id": "r-1"})]
    assert [v["distinct_from"] for v in views if v["id"].startswith("verify[")] == ["prepare"] * len(TENANTS)
    assert views[3]["title"] == "Verify tenant [initech]" and views[3]["evidence"] == {"note": "initech ok"}
    # the list is the caller's; its views are shared with later answers (tiergate.runners.keptviews)
    first = runner.steps(definition, after, run={"id": "r-1"})
    first.pop()
    again = runner.steps(definition, after, run={"id": "r-1"})
    assert [v.to_dict() for v in again] == views and all(a is b for a, b in zip(first, again))


def test_answers_over_shared_records_match_a_run_read_afresh_and_render_the_steps_context(
        tmp_path: Path, make_engine: Callable[..., Engine], db_url: str) -> None:
    home = tier1_home(tmp_path / "home", {"roll": bpmn("roll", BODY)})
    kept = make_engine(home)  # one long-lived engine: each move starts from the state it kept
    run = kept.start("roll", {"tenants": TENANTS, "customer": "acme"}, actor="agent:a").id
    kept.complete(run, "prepare", {}, actor="agent:a")
    for index in range(len(TENANTS)):
        info = kept.complete(run, f"verify[{index}]", {"note": f"{TENANTS[index]} ok"}, actor="human:carol")
        afresh = make_engine(home).status(run)  # another engine: the state parsed from the database
        assert [s.to_dict() for s in info.steps] == [s.to_dict() for s in afresh.steps]
        assert info.data == afresh.data
        assert {s.instructions for s in info.ready_steps if s.id.startswith("verify")} <= {"Check acme for roll"}
    # a template that reads `steps` still gets every step, in the answer's order
    done = "prepare " + "".join(f"verify[{i}] " for i in range(len(TENANTS)))
    assert {s.id: s.instructions for s in info.ready_steps} == {f"sign[{i}]": done for i in range(len(TENANTS))}
    verify = kept.status(run).steps[1]
    assert verify.state == "done" and verify.instructions == ""
