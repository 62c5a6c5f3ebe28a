"""Send-back in checklists: a review that says no reopens earlier steps, with their evidence shown."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import pytest

from support import HomeBuilder, events, states
from tiergate.engine import Engine
from tiergate.errors import GateFailedError, RefusedError

REVIEWED = """\
id: reviewed
title: Reviewed work
owner: lead
expected_minutes: 10
steps:
  - id: brief
    title: Write the brief
    done_when: {type: object, required: [brief], properties: {brief: {type: string}}}
  - id: draft
    title: Write the draft
    done_when: {type: object, required: [draft_url], properties: {draft_url: {type: string}}}
  - id: check
    title: Check facts
    done_when: {type: object, required: [facts_ok], properties: {facts_ok: {const: true}}}
  - id: review
    title: Review
    actors: [human]
    distinct_from: draft
    done_when:
      type: object
      required: [outcome]
      properties:
        outcome: {enum: [approved, changes_requested]}
        requested: {type: array, items: {type: string}}
    sends_back:
      when: {properties: {outcome: {const: changes_requested}}}
      to: [draft]
  - id: publish
    title: Publish
    done_when: {type: object, required: [published], properties: {published: {const: true}}}
"""

NO = {"outcome": "changes_requested", "requested": ["shorten the intro"]}


@pytest.fixture
def reviewed(home: HomeBuilder, make_engine: Callable[..., Engine]) -> Engine:
    home.checklist("reviewed", REVIEWED)
    return make_engine(home)


def _to_review(engine: Engine) -> str:
    run = engine.start("reviewed", {}, actor="agent:bot")
    engine.complete(run.id, "brief", {"brief": "b"}, actor="agent:bot")
    engine.complete(run.id, "draft", {"draft_url": "v1"}, actor="human:dave")
    engine.complete(run.id, "check", {"facts_ok": True}, actor="agent:bot")
    return run.id


def test_a_no_reopens_the_named_step_and_everything_after_it(reviewed: Engine) -> None:
    run_id = _to_review(reviewed)
    after = reviewed.complete(run_id, "review", NO, actor="human:carol")
    assert after.status == "active"
    assert states(reviewed, run_id) == {"brief": "done", "draft": "ready", "check": "locked", "review": "locked",
                                        "publish": "locked"}
    draft = next(s for s in after.steps if s.id == "draft")
    assert draft.evidence is None
    assert draft.earlier is not None
    assert draft.earlier["evidence"] == {"draft_url": "v1"} and draft.earlier["actor"] == "human:dave"
    assert draft.earlier["sent_back"]["evidence"] == NO and draft.earlier["sent_back"]["actor"] == "human:carol"
    assert draft.earlier["rework"] == 1
    review = next(s for s in after.steps if s.id == "review")
    assert review.earlier is not None and review.earlier["sent_back"]["step"] == "review"
    # The review's "no" is not merged into the run's data.
    assert "outcome" not in after.data
    log = reviewed.log(run_id)
    sent = [e for e in log if e["event"] == "sent_back"]
    assert len(sent) == 1 and sent[0]["step"] == "review" and sent[0]["actor"] == "human:carol"
    assert sent[0]["detail"] == {"evidence": NO, "to": ["draft"], "reopened": ["draft", "check", "review", "publish"]}
    assert events(reviewed, run_id)[-2:] == [("review", "sent_back", "human:carol"),
                                             ("draft", "step_ready", "system:tiergate")]


def test_redone_steps_replace_their_own_data_and_the_run_completes(reviewed: Engine) -> None:
    run_id = _to_review(reviewed)
    reviewed.complete(run_id, "review", NO, actor="human:carol")
    # A later step still waits for the redone one.
    with pytest.raises(RefusedError) as err:
        reviewed.complete(run_id, "check", {"facts_ok": True}, actor="agent:bot")
    assert err.value.reason == "not_ready"
    reviewed.complete(run_id, "draft", {"draft_url": "v2"}, actor="human:dave")   # no data_conflict with v1
    reviewed.complete(run_id, "check", {"facts_ok": True}, actor="agent:bot")
    # Four eyes still hold on the second round.
    with pytest.raises(RefusedError) as same:
        reviewed.complete(run_id, "review", {"outcome": "approved"}, actor="human:dave")
    assert same.value.reason == "same_actor"
    reviewed.complete(run_id, "review", {"outcome": "approved"}, actor="human:carol")
    done = reviewed.complete(run_id, "publish", {"published": True}, actor="agent:bot")
    assert done.status == "completed"
    assert done.data["draft_url"] == "v2" and done.data["outcome"] == "approved"
    draft = next(s for s in done.steps if s.id == "draft")
    assert draft.evidence == {"draft_url": "v2"} and draft.earlier["evidence"] == {"draft_url": "v1"}


def test_evidence_the_gate_refuses_is_a_failed_gate_not_a_send_back(reviewed: Engine) -> None:
    run_id = _to_review(reviewed)
    with pytest.raises(GateFailedError):
        reviewed.complete(run_id, "review", {"outcome": "maybe"}, actor="human:carol")
    assert states(reviewed, run_id)["draft"] == "done"
    assert not [e for e in reviewed.log(run_id) if e["event"] == "sent_back"]


def test_rework_is_counted_in_metrics(reviewed: Engine) -> None:
    run_id = _to_review(reviewed)
    reviewed.complete(run_id, "review", NO, actor="human:carol")
    reviewed.complete(run_id, "draft", {"draft_url": "v2"}, actor="human:dave")
    reviewed.complete(run_id, "check", {"facts_ok": True}, actor="agent:bot")
    reviewed.complete(run_id, "review", NO, actor="human:carol")
    for from_log in (False, True):
        report = reviewed.metrics(from_log=from_log)
        process = next(p for p in report["processes"] if p["process"] == "reviewed")
        assert process["rework"] == {"sent_back": 2, "per_run": 2.0}
        assert process["deviations"]["total"] == 0
        review = next(s for s in process["steps"] if s["step"] == "review")
        assert review["sent_back"] == 2 and review["left_ready"] == 0
        assert report["totals"]["rework"]["sent_back"] == 2


@pytest.mark.parametrize("sends_back, message", [
    ("{when: {}, to: [publish]}", "sends_back can only reopen earlier steps, and 'review' does not wait for "
                                  "'publish'"),
    ("{when: {}, to: [nope]}", "sends_back names 'nope', which is not a step of this checklist"),
    ("{when: {type: 7}, to: [draft]}", "sends_back.when of step 'review' is not a valid JSON Schema"),
])
def test_check_reports_a_bad_send_back(home: HomeBuilder, make_engine: Callable[..., Engine], sends_back: str,
                                       message: str) -> None:
    text = REVIEWED.replace("sends_back:\n      when: {properties: {outcome: {const: changes_requested}}}\n"
                            "      to: [draft]", f"sends_back: {sends_back}")
    assert text != REVIEWED
    home.checklist("reviewed", text)
    problems = [str(p) for p in make_engine(home).check()]
    assert any(message in p and "checklists/reviewed.yaml:" in p for p in problems), problems


def test_shipped_review_gate_lets_a_reviewer_say_no(repo_home: Path, make_engine: Callable[..., Engine]) -> None:
    engine = make_engine(repo_home)
    assert not [p for p in engine.check() if p.severity == "error"]
    definition: Any = engine.definitions.checklist("documentation-generation")
    step = definition.checklist.step("editorial-review")
    assert step.sends_back is not None and step.sends_back.to == ["draft"]
    gate = definition.validator(step.done_when)
    no = {"review_outcome": "changes_requested", "checked": ["structure"], "review_notes": "x" * 25}
    assert [e.message for e in gate.iter_errors(no)] and "requested_changes" in str(
        [e.message for e in gate.iter_errors(no)])
    assert not list(gate.iter_errors({**no, "requested_changes": ["rewrite the summary"]}))
    for checklist_id, step_id in (("standard-data-import", "sign-off"), ("defect-capture", "lead-review")):
        other = engine.definitions.checklist(checklist_id).checklist.step(step_id)
        assert other is not None and other.sends_back is not None
