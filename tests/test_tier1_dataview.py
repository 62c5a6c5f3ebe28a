"""A Tier 1 run's data view kept per workflow and brought up to date from the tasks a move touched
(``tiergate.bpmn.dataview``) is the view merged from every task, value for value and byte for byte.

After every move of a long-lived engine the stored view (the run row's text, and the state the
engine keeps for its next move) is compared with ``to_jsonable`` of the whole merge over the very
workflow the engine kept. The processes are large enough to be tracked (64 tasks or more), and
their steps change the view in each way the merge knows: evidence merged into the activity that
adds keys, overwrites a start key and sets the instances' own item key; the last open instance
completed (the view's item comes from the new last one); instances completed out of order; parallel
branches whose completed task takes its keys out of the view; a failed task and its retry. The view
is also held against a new CLI process that restores the run and moves it the same way, and so is
the whole stored state (task tree, step records and view).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from support import CLIResult
from test_tier1_kept_restored import _stored
from test_tier1_instances import camunda_mi, repeated
from tier1_helpers import bpmn, chain, flow, tier1_home, user

from tiergate.bpmn import dataview, kept
from tiergate.bpmn.moves import Move
from tiergate.engine import Engine
from tiergate.jsontext import Frozen
from tiergate.jsonutil import to_jsonable
from tiergate.store import runs as store

ROLL = bpmn("roll", '<bpmn:startEvent id="start"/><bpmn:parallelGateway id="split"/>'
            + repeated("verify", camunda_mi("tenants", "tenant")) + user("side") + user("after_side")
            + '<bpmn:parallelGateway id="join"/>' + user("after") + '<bpmn:endEvent id="end"/>'
            + chain("start", "split") + flow("s1", "split", "verify") + flow("s2", "split", "side")
            + chain("side", "after_side", prefix="g") + flow("j1", "verify", "join") + flow("j2", "after_side", "join")
            + chain("join", "after", "end", prefix="h"))

FAILING = bpmn("failing", '<bpmn:startEvent id="start"/>' + repeated("verify", camunda_mi("tenants", "tenant"))
               + '<bpmn:scriptTask id="total"><bpmn:script>total = 100 / divisor</bpmn:script></bpmn:scriptTask>'
               + user("after") + '<bpmn:endEvent id="end"/>' + chain("start", "verify", "total", "after", "end"))

TENANTS = [f"tenant-{i}" for i in range(70)]
_WHOLE = dataview._whole  # the whole merge, as it always was (the tests' own calls are not counted)


class Followed:
    """Counts the views made whole (``dataview._whole``) against those brought up to date."""

    def __init__(self) -> None:
        self.whole = self.views = 0

    def __enter__(self) -> Followed:
        self._whole, self._view = dataview._whole, dataview.view

        def whole(*args: Any) -> Any:
            self.whole += 1
            return self._whole(*args)

        def view(*args: Any) -> Any:
            self.views += 1
            return self._view(*args)

        dataview._whole, dataview.view = whole, view  # type: ignore[assignment]
        return self

    def __exit__(self, *exc: Any) -> None:
        dataview._whole, dataview.view = self._whole, self._view  # type: ignore[assignment]


def _same_as_a_whole_view(engine: Engine, run_id: str) -> dict[str, Any]:
    """The stored view is the whole merge over the workflow the engine kept; the view."""
    with engine.db.read() as conn:
        record = store.get_run(conn, run_id)
    assert record is not None
    if record.status.is_final:  # a run that is over is not kept (store.RecentRuns.put)
        assert run_id not in engine._recent_runs._runs
        return record.state["data"]  # type: ignore[no-any-return]
    recent = engine._recent_runs._runs[run_id]
    assert json.loads(recent.state_json or "")["data"] == record.state["data"] == recent.state["data"]
    if record.status.value != "active":
        return record.state["data"]  # type: ignore[no-any-return]
    workflow = next(wf for (stamp, _), wf in kept._kept.items() if stamp == record.state["move"])
    merged, _ = _WHOLE(SimpleNamespace(workflow=workflow, step_of=Move.step_of),  # type: ignore[arg-type]
                                *_moves_functions())
    whole = to_jsonable(merged)
    view = recent.state["data"]
    assert type(view) is Frozen and view == whole
    assert view.text == json.dumps(whole)  # the state's text takes the view's: the same bytes
    assert f'"data": {view.text}' in (recent.state_json or "")
    return whole


def _moves_functions() -> tuple[Any, Any]:
    from tiergate.bpmn.taskkinds import element_of, is_step

    return element_of, is_step


def test_a_kept_view_follows_every_move_of_a_large_multi_instance_task(
        tmp_path: Path, make_engine: Callable[..., Engine]) -> None:
    engine = make_engine(tier1_home(tmp_path / "home", {"roll": ROLL}))
    run = engine.start("roll", {"tenants": TENANTS, "customer": "acme"}, actor="agent:a")
    first = _same_as_a_whole_view(engine, run.id)
    assert first["tenant"] == "tenant-69" and "note" not in first
    steps: list[tuple[str, dict[str, Any]]] = [
        ("verify[3]", {"note": "three"}),  # a key new to the activity's data
        ("verify[69]", {"note": "the last one"}),  # the last open instance: the item comes from verify[68]
        ("verify[0]", {"customer": "globex", "checks": {"payroll": True}}),  # overwrites a start key
        ("verify[68]", {"tenant": "someone else"}),  # the instances' own key, now in the activity too
        ("side", {"side_note": "done", "customer": "initech"}),  # a branch: its keys leave the view with it
        ("verify[10]", {"note": "ten", "extra": [1, 2.5, None]}),
        ("after_side", {"late": True}),
        ("verify[67]", {"note": "sixty-seven"}),
    ]
    with Followed() as followed:
        for step, evidence in steps:
            engine.complete(run.id, step, evidence, actor="agent:a")
            _same_as_a_whole_view(engine, run.id)
    assert followed.views == len(steps) and followed.whole <= 2  # most moves followed the touched tasks
    view = _same_as_a_whole_view(engine, run.id)
    # each open instance took "customer" from the start data: it wins over the activity's merged evidence
    assert view["tenant"] == "tenant-66" and view["note"] == "sixty-seven" and view["customer"] == "acme"
    assert "side_note" not in view and "late" not in view  # their branch waits at the join, out of the view
    with Followed() as followed:
        for index in [i for i in range(70) if i not in (0, 3, 10, 67, 68, 69)]:
            engine.complete(run.id, f"verify[{index}]", {"note": f"n{index}"}, actor="agent:a")
            _same_as_a_whole_view(engine, run.id)
    view = _same_as_a_whole_view(engine, run.id)
    assert view["late"] is True and view["side_note"] == "done" and view["note"] == "n66"  # past the join
    assert engine.complete(run.id, "after", {}, actor="agent:a").status == "completed"
    assert engine.verify_log()["ok"] is True


def test_a_failed_task_and_its_retry_make_the_view_whole(tmp_path: Path, make_engine: Callable[..., Engine]) -> None:
    engine = make_engine(tier1_home(tmp_path / "home", {"failing": FAILING}))
    run = engine.start("failing", {"tenants": TENANTS, "divisor": 0}, actor="agent:a")
    for index in range(69):
        engine.complete(run.id, f"verify[{index}]", {"note": f"n{index}"}, actor="agent:a")
        if index % 17 == 0:
            _same_as_a_whole_view(engine, run.id)
    info = engine.complete(run.id, "verify[69]", {"note": "last"}, actor="agent:a")
    assert info.status == "failed"
    with engine.db.read() as conn:
        record = store.get_run(conn, run.id)
    assert record is not None and record.state["data"]["note"] == "last" and record.state["data"]["divisor"] == 0
    info = engine.retry(run.id, "total", {"divisor": 4}, actor="human:alice")
    assert info.status == "active"
    view = _same_as_a_whole_view(engine, run.id)
    assert view["total"] == 25 and view["divisor"] == 4


def test_a_kept_view_is_what_a_new_process_restoring_the_run_makes(
        tmp_path: Path, db_url: str, make_engine: Callable[..., Engine], cli: Callable[..., CLIResult]) -> None:
    home = tier1_home(tmp_path / "home", {"roll": ROLL})
    engine = make_engine(home)
    start = {"tenants": TENANTS, "customer": "acme"}
    kept_run = engine.start("roll", start, actor="agent:a").id
    started = cli("start", "roll", "--data", json.dumps(start), "--actor", "agent:a", "--json", home=home)
    assert started.returncode == 0, started
    restored_run = started.json["data"]["id"]
    filler = iter(range(20, 40))
    for step, evidence in [("verify[69]", {"note": "last", "tenant": "x"}), ("side", {"customer": "globex"}),
                           ("verify[5]", {"note": "five"}), ("after_side", {"late": 1})]:
        for index in (next(filler), next(filler)):  # moves the kept run follows, then the step both make
            engine.complete(kept_run, f"verify[{index}]", {"note": "filler"}, actor="agent:a")
            done = cli("complete", restored_run, f"verify[{index}]", "--evidence", '{"note": "filler"}',
                       "--actor", "agent:a", "--json", home=home)
            assert done.returncode == 0, done
        engine.complete(kept_run, step, evidence, actor="agent:a")
        done = cli("complete", restored_run, step, "--evidence", json.dumps(evidence), "--actor", "agent:a",
                   "--json", home=home)
        assert done.returncode == 0, done
        view = _same_as_a_whole_view(engine, kept_run)
        shown = cli("status", restored_run, "--json", home=home)
        assert shown.returncode == 0, shown
        assert shown.json["data"]["data"] == view, step
        # the whole stored state too (tree, records, view), but for task ids, times and the kept stamp
        assert _stored(db_url, kept_run) == _stored(db_url, restored_run), step
