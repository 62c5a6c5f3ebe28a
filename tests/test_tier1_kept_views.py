"""A Tier 1 run's step views are kept from one answer to the next (``tiergate.runners.keptviews``):
only the steps whose records changed are made and rendered again, every answer is what a run read
afresh from the database shows, and no answer changes a view another answer holds."""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sqlalchemy import select
from test_tier1_instances import camunda_mi, repeated
from tier1_helpers import bpmn, chain, flow, tier1_home

from tiergate import claims
from tiergate.engine import Engine
from tiergate.lifecycle import RunStatus
from tiergate.runview import StepView, render_ready
from tiergate.store.tables import Run

ITEMS = ["acme", "globex", "initech", "umbrella"]
BODY = ('<bpmn:startEvent id="start"/>'
        + repeated("make", camunda_mi("items", "item"), name="Make", docs="Make {{ data.customer }}")
        + repeated("check", camunda_mi("items", "item"), name="Check", distinct_from="make", optional="true",
                   docs="Check {{ data.customer }} after {{ data.last | default('nobody') }}")
        + repeated("file", camunda_mi("items", "item"), name="File", docs="File {{ data.nothing.here }}")
        + '<bpmn:endEvent id="end"/>' + chain("start", "make", "check", "file", "end"))


LANES = {"reviewer": ["file"]}


def _answers(info: Any) -> list[dict[str, Any]]:
    return [step.to_dict() for step in info.steps]


def test_every_answer_is_what_a_run_read_afresh_shows(tmp_path: Path, make_engine: Callable[..., Engine]) -> None:
    home = tier1_home(tmp_path / "home", {"roll": bpmn("roll", BODY, lanes=LANES)})
    kept = make_engine(home)  # one long-lived engine: its views are kept between its answers
    run = kept.start("roll", {"items": ITEMS, "customer": "acme"}, actor="agent:a")
    answers = [(run, _answers(run))]
    moves: list[tuple[str, str, dict[str, Any] | None]] = [
        *((f"make[{i}]", f"agent:m{i}", {"note": f"m{i}"} if i % 2 else {}) for i in range(len(ITEMS))),
        ("check[1]", "agent:m0", {}),  # four eyes per instance: make[1] was m1's
        ("check[0]", "agent:m1", {"last": "c0"}),
        ("check[3]", "agent:m0", None),  # a skip: the record changes, the data does not
        ("check[2]", "agent:m0", {}),
        ("file[2]", "agent:reviewer-bot", {}),
    ]
    for step, actor, evidence in moves:
        if evidence is None:
            info = kept.skip(run.id, step, "not needed", actor=actor)
        else:
            info = kept.complete(run.id, step, evidence, actor=actor)
        afresh = make_engine(home).status(run.id)  # another engine: the run parsed from the database
        assert _answers(info) == _answers(afresh) and info.data == afresh.data, step
        # the inbox key written with the state is the one worked out from every view
        key = claims.ready_key(list(afresh.steps), RunStatus(afresh.status))
        with kept.db.read() as conn:
            assert conn.execute(select(Run.__table__.c.ready_for).where(Run.__table__.c.id == run.id)).scalar() == key
        assert claims.ready_key(info.steps, RunStatus(info.status)) == key
        assert _answers(kept.status(run.id)) == _answers(afresh)  # a read in between leaves the kept views be
        answers.append((info, _answers(info)))
    assert _answers(kept.status(run.id)) == _answers(afresh)  # the kept engine's own read of the stored run

    by_id = {s.id: s for s in info.steps}
    assert [by_id[f"check[{i}]"].distinct_from for i in range(len(ITEMS))] == [f"make[{i}]" for i in range(len(ITEMS))]
    assert by_id["check[0]"].state == "done" and by_id["check[0]"].instructions == ""
    # a template that fails says so in every ready step that shows it, naming the first of them
    assert {by_id[f"file[{i}]"].instructions for i in (0, 1, 3)} == {
        kept.status(run.id).steps[-1].instructions}
    assert "file[0]" in by_id["file[0]"].instructions and "cannot be shown" in by_id["file[0]"].instructions
    # no later answer changed a view an earlier answer holds
    assert [_answers(info) for info, _ in answers] == [seen for _, seen in answers]


def test_instructions_that_name_the_data_or_their_item_match_a_run_read_afresh(
        tmp_path: Path, make_engine: Callable[..., Engine]) -> None:
    body = ('<bpmn:startEvent id="start"/>'
            + repeated("make", camunda_mi("items", "item"), docs="Make it for {{ customer }} ({{ last }})")
            + repeated("check", camunda_mi("items", "item"), docs="Check {{ item }} for {{ customer }}: {{ note }}")
            + '<bpmn:endEvent id="end"/>' + chain("start", "make", "check", "end"))
    home = tier1_home(tmp_path / "home", {"names": bpmn("names", body)})
    kept = make_engine(home)
    run = kept.start("names", {"items": ITEMS, "customer": "acme"}, actor="agent:a")
    for step, evidence in (("make[0]", {}), ("make[1]", {"last": "m1"}), ("make[2]", {}), ("make[3]", {}),
                           ("check[1]", {}), ("check[0]", {"note": "seen"}), ("check[3]", {})):
        info = kept.complete(run.id, step, evidence, actor="agent:a")
        assert _answers(info) == _answers(make_engine(home).status(run.id)), step
    assert [s.instructions for s in info.ready_steps] == ["Check initech for acme: seen"]


def test_the_inbox_key_follows_the_ready_steps_when_one_of_two_parallel_tasks_ends(
        tmp_path: Path, make_engine: Callable[..., Engine]) -> None:
    body = ('<bpmn:startEvent id="start"/><bpmn:parallelGateway id="split"/>'
            + repeated("draft", camunda_mi("items", "item")) + repeated("review", camunda_mi("items", "item"))
            + '<bpmn:parallelGateway id="join"/><bpmn:endEvent id="end"/>'
            + flow("f1", "start", "split") + flow("f2", "split", "draft") + flow("f3", "split", "review")
            + flow("f4", "draft", "join") + flow("f5", "review", "join") + flow("f6", "join", "end"))
    engine = make_engine(tier1_home(tmp_path / "home", {"two": bpmn("two", body, lanes={"reviewer": ["review"]})}))
    run = engine.start("two", {"items": ["x", "y"]}, actor="agent:a")
    keys = []
    for step, actor in (("draft[0]", "agent:a"), ("review[0]", "agent:reviewer-bot"), ("draft[1]", "agent:a"),
                        ("review[1]", "agent:reviewer-bot")):
        info = engine.complete(run.id, step, {}, actor=actor)
        with engine.db.read() as conn:
            keys.append(conn.execute(select(Run.__table__.c.ready_for).where(Run.__table__.c.id == run.id)).scalar())
        assert keys[-1] == claims.ready_key([copy.copy(s) for s in info.steps], RunStatus(info.status))
    both, review = "|*/agent|*/human|reviewer/agent|reviewer/human|", "|reviewer/agent|reviewer/human|"
    assert keys == [both, both, review, "|"]  # draft's (no role) goes with its last instance


def test_an_answer_makes_again_only_the_views_whose_record_or_text_changed(
        tmp_path: Path, make_engine: Callable[..., Engine]) -> None:
    engine = make_engine(tier1_home(tmp_path / "home", {"roll": bpmn("roll", BODY)}))
    run = engine.start("roll", {"items": ITEMS, "customer": "acme"}, actor="agent:a")
    for i in range(len(ITEMS)):
        engine.complete(run.id, f"make[{i}]", {}, actor=f"agent:m{i}")
    first = engine.complete(run.id, "check[0]", {}, actor="agent:m1")
    assert engine.status(run.id).steps[4] is not first.steps[4]  # records read from the database: made whole
    second = engine.complete(run.id, "check[1]", {}, actor="agent:m0")  # the data stays as it was
    changed = [a.id for a, b in zip(first.steps, second.steps) if a is not b]
    assert changed == ["check[1]"]
    assert second.steps[6].instructions == "Check acme after nobody"
    third = engine.complete(run.id, "check[2]", {"last": "m0"}, actor="agent:m0")  # the data changes
    changed = [a.id for a, b in zip(second.steps, third.steps) if a is not b]
    assert changed == ["check[2]", "check[3]"]  # the record done, and the one ready step showing the new text
    assert third.steps[7].instructions == "Check acme after m0"
    assert second.steps[7].instructions == "Check acme after nobody"


def test_shared_views_are_replaced_not_changed_when_rendered() -> None:
    views = [StepView(id="a", title="A", state="ready", instructions="Hi {{ data.who }}"),
             StepView(id="b", title="B", state="done", instructions="Bye {{ data.who }}"),
             StepView(id="c", title="C", state="ready")]
    before = [dict(v.__dict__) for v in views]
    shown = list(views)
    render_ready(shown, {"who": "Ada"}, run_id="r", process_id="p", shared=True)
    assert [v.__dict__ for v in views] == before  # the views given are untouched
    assert [v.instructions for v in shown] == ["Hi Ada", "", ""] and shown[2] is views[2]
    render_ready(views, {"who": "Ada"}, run_id="r", process_id="p")  # not shared: changed in place
    assert [v.to_dict() for v in views] == [v.to_dict() for v in shown]
