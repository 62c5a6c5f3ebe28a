"""A kept workflow's dump follows only the tasks a move touched (``tiergate.bpmn.touched``), and is
still SpiffWorkflow's whole dump of that workflow, byte for byte.

After every move of a long-lived engine the run's stored task tree is compared with
``json.dumps(persistence.dump(...))`` of the very workflow the engine kept: a change the tracking
missed (a task whose state, children, parent or delta changed without its dict being made again)
shows as a difference. The processes change tasks other than the one completed: a multi-instance
activity merging each instance's evidence into its own data (the parent of 80 parked instances)
and its completion condition cancelling the rest, timers on a ready task (one adds a path beside
it, one interrupts it), an event subprocess interrupting a parallel branch, a script on one
branch beside parked ones.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from test_tier1_events import ERROR_SUBPROCESS, process
from test_tier1_instances import camunda_mi, repeated
from test_tier1_kept_restored import _normal
from test_tier1_timers import APPROVAL
from tier1_helpers import bpmn, chain, flow, tier1_home, user

from tiergate.bpmn import dumping, kept, persistence, pruning, touched
from tiergate.engine import Engine
from tiergate.store import runs as store
from tiergate.worker import run_pass

T0 = datetime(2026, 1, 5, 9, 0, tzinfo=timezone.utc)

MANY = bpmn("many", '<bpmn:startEvent id="start"/>'
            + repeated("vote", camunda_mi("voters", "voter", condition="veto"))
            + user("after") + '<bpmn:endEvent id="end"/>' + chain("start", "vote", "after", "end"))

SEQUENCE = bpmn("sequence", '<bpmn:startEvent id="start"/>'
                + repeated("check", camunda_mi("items", "item", sequential=True, condition="stop"))
                + '<bpmn:exclusiveGateway id="merge"/>' + user("work")
                + '<bpmn:exclusiveGateway id="more" default="done"/>'
                + '<bpmn:endEvent id="end"/>' + chain("start", "check", "merge", "work", "more")
                + flow("again", "more", "merge", condition="again") + flow("done", "more", "end"))

BRANCHES = bpmn("branches", (
    '<bpmn:startEvent id="start"/><bpmn:parallelGateway id="split"/>' + user("a") + user("b") + user("c")
    + '<bpmn:scriptTask id="count"><bpmn:script>total = total + 1\nnote = "counted"</bpmn:script></bpmn:scriptTask>'
    + '<bpmn:parallelGateway id="join"/>' + user("after") + '<bpmn:endEvent id="end"/>'
    + chain("start", "split") + flow("fa", "split", "a") + flow("fb", "split", "b") + flow("fc", "split", "c")
    + chain("a", "count") + flow("j1", "count", "join") + flow("j2", "b", "join") + flow("j3", "c", "join")
    + chain("join", "after", "end")))


def _same_as_a_whole_dump(engine: Engine, run_id: str) -> bool:
    """The stored tree is the whole dump of the workflow the engine kept; whether one was kept (and tracked)."""
    with engine.db.read() as conn:
        record = store.get_run(conn, run_id)
    assert record is not None
    state = record.state
    move = state.get("move")
    workflow = next((wf for (stamp, _), wf in kept._kept.items() if stamp == move), None) if move else None
    if workflow is None:
        return False
    # its next dump follows the touched tasks, unless it was a small tree dumped whole (``dumping._small_tree``)
    assert hasattr(workflow, touched.TOUCHED) or len(workflow.tasks) < dumping._FEW
    assert json.dumps(state["workflow"]) == json.dumps(persistence.dump(workflow))
    return True


def test_multi_instance_evidence_and_a_completion_condition(tmp_path: Path,
                                                             make_engine: Callable[..., Engine]) -> None:
    engine = make_engine(tier1_home(tmp_path / "home", {"many": MANY}))
    voters = [f"v{i}" for i in range(80)]
    run = engine.start("many", {"voters": voters, "veto": False, "region": "eu"}, actor="agent:a")
    assert _same_as_a_whole_dump(engine, run.id)
    evidence: list[dict[str, Any]] = [
        {"note": "first"},  # a key new to the activity's data
        {"note": "second"},  # the same key, another value
        {"note": "second"},  # the same value again
        {"note": "third", "extra": [1, 2]},  # one more new key
        {"veto": False, "voter": "someone else"},  # a key every open instance has, changed in the activity
        {"note": "fourth"},
        # a key every open instance has with the activity's value, changed there: every open instance's
        # delta now lists it (a dump that took their dicts as they were would not), then back again
        {"region": "us"},
        {"note": "fifth"},
        {"region": "eu"},
    ]
    for index, fields in enumerate(evidence):
        engine.complete(run.id, f"vote[{index}]", fields, actor="agent:a")
        assert _same_as_a_whole_dump(engine, run.id)
    info = engine.complete(run.id, "vote[40]", {"veto": True}, actor="agent:a")  # the others are cancelled
    assert [s.id for s in info.ready_steps] == ["after"]
    assert _same_as_a_whole_dump(engine, run.id)
    skipped = {e["step"]: e["detail"]["reason"] for e in engine.log(run.id) if e["event"] == "step_skipped"}
    open_ones = {f"vote[{i}]" for i in range(80)} - {f"vote[{i}]" for i in (*range(len(evidence)), 40)}
    assert skipped == {step: "cancelled: the process moved on without it" for step in open_ones}
    assert engine.complete(run.id, "after", {}, actor="agent:a").status == "completed"


def test_timers_on_a_ready_task(tmp_path: Path, make_engine: Callable[..., Engine]) -> None:
    engine = make_engine(tier1_home(tmp_path / "home", {"approval": APPROVAL}), clock=lambda: T0)
    run = engine.start("approval", {}, actor="agent:a")
    assert _same_as_a_whole_dump(engine, run.id)
    run_pass(engine, now=T0 + timedelta(hours=5))  # the reminder: a path beside the ready task
    assert sorted(s.id for s in engine.status(run.id).ready_steps) == ["approve", "nudge"]
    assert _same_as_a_whole_dump(engine, run.id)
    engine.complete(run.id, "nudge", {}, actor="agent:a")
    assert _same_as_a_whole_dump(engine, run.id)
    run_pass(engine, now=T0 + timedelta(hours=49))  # overdue: the ready task is interrupted
    assert [s.id for s in engine.status(run.id).ready_steps] == ["escalate"]
    assert _same_as_a_whole_dump(engine, run.id)
    assert engine.complete(run.id, "escalate", {}, actor="agent:a").status == "completed"


def test_an_event_subprocess_interrupts_a_parked_branch(tmp_path: Path,
                                                       make_engine: Callable[..., Engine]) -> None:
    engine = make_engine(tier1_home(tmp_path / "home", {"evs": process("evs", ERROR_SUBPROCESS)}))
    run = engine.start("evs", {}, actor="agent:a")
    assert _same_as_a_whole_dump(engine, run.id)
    info = engine.complete(run.id, "work", {"broken": True}, actor="agent:a")
    assert [s.id for s in info.ready_steps] == ["repair"]
    assert _same_as_a_whole_dump(engine, run.id)
    assert engine.complete(run.id, "repair", {}, actor="agent:a").status == "completed"


def test_a_script_beside_parked_branches(tmp_path: Path, make_engine: Callable[..., Engine]) -> None:
    engine = make_engine(tier1_home(tmp_path / "home", {"branches": BRANCHES}))
    run = engine.start("branches", {"total": 0, "note": "start"}, actor="agent:a")
    assert _same_as_a_whole_dump(engine, run.id)
    for step, fields in (("b", {"note": "b done"}), ("a", {"total": 5}), ("c", {"extra": True})):
        engine.complete(run.id, step, fields, actor="agent:a")
        assert _same_as_a_whole_dump(engine, run.id)
    info = engine.complete(run.id, "after", {}, actor="agent:a")
    assert info.status == "completed" and info.data["total"] == 6


def test_sequential_instances_and_a_loop_make_new_ready_tasks(tmp_path: Path,
                                                              make_engine: Callable[..., Engine]) -> None:
    """Each step makes the next ready task (the next instance, the next round): the move's ready steps
    are the last move's with the new one added, as going through every task finds them."""
    engine = make_engine(tier1_home(tmp_path / "home", {"sequence": SEQUENCE}))
    run = engine.start("sequence", {"items": [f"i{n}" for n in range(70)], "stop": False, "again": True},
                       actor="agent:a")
    for n in range(5):
        info = engine.complete(run.id, f"check[{n}]", {"note": f"item {n}", "stop": n == 4}, actor="agent:a")
        assert [s.id for s in info.ready_steps] == (["work"] if n == 4 else [f"check[{n + 1}]"])
        assert _same_as_a_whole_dump(engine, run.id)
    for again in (True, True, False):
        info = engine.complete(run.id, "work", {"again": again}, actor="agent:a")
        assert [s.id for s in info.ready_steps] == (["work"] if again else [])
        if again:
            assert _same_as_a_whole_dump(engine, run.id)
    assert info.status == "completed"
    ready = [e["step"] for e in engine.log(run.id) if e["event"] == "step_ready"]
    assert ready == [f"check[{n}]" for n in range(5)] + ["work"] * 3

#: Branches beside a multi-instance task over enough items to keep the tree tracked: completing ``a``
#: removes it while its script's task stays (the parent of the waiting join), re-attached under the split
#: after the split's other children.
WIDE = bpmn("wide", (
    '<bpmn:startEvent id="start"/><bpmn:parallelGateway id="split"/>' + user("a") + user("b")
    + repeated("vote", camunda_mi("voters", "voter", condition="veto"))
    + '<bpmn:scriptTask id="count"><bpmn:script>total = total + 1</bpmn:script></bpmn:scriptTask>'
    + '<bpmn:parallelGateway id="join"/>' + user("after") + '<bpmn:endEvent id="end"/>'
    + chain("start", "split") + flow("fa", "split", "a") + flow("fb", "split", "b") + flow("fv", "split", "vote")
    + chain("a", "count") + flow("j1", "count", "join") + flow("j2", "b", "join") + flow("j3", "vote", "join")
    + chain("join", "after", "end")))


def _stored_normal(engine: Engine, run_id: str) -> tuple[str, Any]:
    with engine.db.read() as conn:
        record = store.get_run(conn, run_id)
    assert record is not None
    return record.status.value, _normal(record.state, {})


def _restored_next(engine: Engine, run_id: str) -> None:
    """Drop the workflow the engine kept for the run: its next move restores it from the database, and
    a restored workflow is not tracked, so every prune of that move is the full pass."""
    with engine.db.read() as conn:
        record = store.get_run(conn, run_id)
    assert record is not None
    for key in [key for key in kept._kept if key[0] == record.state.get("move")]:
        del kept._kept[key]


@pytest.mark.parametrize("process_id, start, steps", [
    ("many", {"voters": [f"v{i}" for i in range(30)], "veto": False, "region": "eu"},
     [("vote[0]", {"note": "a"}), ("vote[5]", {"region": "us"}), ("vote[3]", {"note": "b"}),
      ("vote[29]", {}), ("vote[12]", {"veto": True}), ("after", {})]),
    ("wide", {"voters": [f"v{i}" for i in range(70)], "veto": False, "total": 0},
     [("vote[3]", {"note": "a"}), ("a", {"note": "a done"}), ("vote[0]", {}), ("b", {}),
      ("vote[9]", {"veto": True}), ("after", {})]),
    ("branches", {"total": 0, "note": "start"},
     [("b", {"note": "b done"}), ("a", {"total": 5}), ("c", {"extra": True}), ("after", {})]),
    ("sequence", {"items": [f"i{n}" for n in range(70)], "stop": False, "again": True},
     [*[(f"check[{n}]", {"note": f"item {n}", "stop": n == 3}) for n in range(4)],
      ("work", {"again": True}), ("work", {"again": True}), ("work", {"again": False})]),
])
def test_pruning_from_the_touched_tasks_is_the_full_pass(
        tmp_path: Path, make_engine: Callable[..., Engine], monkeypatch: pytest.MonkeyPatch,
        process_id: str, start: dict[str, Any], steps: list[tuple[str, dict[str, Any]]]) -> None:
    """A kept workflow is pruned from the tasks touched since its last prune (``tiergate.bpmn.pruning``);
    the same run restored from the database before every step is pruned in full. Both store the same
    state after every step: the same tasks, the same children in the same order."""
    followed: list[int] = []
    follow = pruning.follow

    def counting(workflow: Any, since: dict[int, Any]) -> int | None:
        removed = follow(workflow, since)
        if removed:
            followed.append(removed)
        return removed

    monkeypatch.setattr(pruning, "follow", counting)
    engine = make_engine(tier1_home(tmp_path / "home", {"many": MANY, "branches": BRANCHES, "sequence": SEQUENCE,
                                                                   "wide": WIDE}))
    kept_run = engine.start(process_id, start, actor="agent:a").id
    restored_run = engine.start(process_id, start, actor="agent:a").id
    for step, fields in steps:
        _restored_next(engine, restored_run)
        engine.complete(kept_run, step, fields, actor="agent:a")
        engine.complete(restored_run, step, fields, actor="agent:a")
        assert _stored_normal(engine, kept_run) == _stored_normal(engine, restored_run), step
    assert _stored_normal(engine, kept_run)[0] == "completed"
    # the same entries (the order of steps skipped together follows their tasks' random ids)
    logged = [sorted((e["event"], e["step"] or "") for e in engine.log(run)) for run in (kept_run, restored_run)]
    assert logged[0] == logged[1]
    # tasks were removed by following the touched tasks (a small tree dumped whole is not tracked: the
    # sequence's instances come one at a time)
    assert bool(followed) == (process_id != "sequence")


def test_a_long_lists_repr_is_reused_only_while_it_holds_the_same_items() -> None:
    """``dumping._reprs`` (a parent's values, against which its parked children's deltas are checked)
    reuses a long list's repr from the task's last dump only for the same list holding the same items."""
    items: list[Any] = [f"t{i}" for i in range(100)]
    data: dict[str, Any] = {"items": items, "n": 1}
    nested = [["a"]] * 70
    changes: list[Callable[[], None]] = [
        lambda: None,
        lambda: items.__setitem__(5, "other"),  # in place
        lambda: items.__setitem__(5, "other"),  # the same again (an equal string)
        lambda: items.append("x"),
        lambda: items.__setitem__(7, 3),
        lambda: items.__setitem__(9, ["nested"]),  # no longer plain: spelled every time
        lambda: items[9].append("more"),
        lambda: data.__setitem__("items", list(items)),
        lambda: data.__setitem__("nested", nested),
        lambda: nested[0].append("b"),
    ]
    before = None
    for change in changes:
        change()
        keys, lists = dumping._reprs(data, before)  # type: ignore[arg-type]
        assert keys == {key: repr(value) for key, value in data.items()}
        before = SimpleNamespace(lists=lists)
