"""Tier 2 at run time: readiness, the order of checks, refusals, gates, data, completion."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from support import events, row, states
from tiergate.engine import Engine
from tiergate.errors import GateFailedError, InvalidDataError, NotFoundError, RefusedError, UsageError

GOOD = {"summary": "Payslip totals are off by one cent", "severity": "S2"}



def test_start_shows_ready_steps_with_rendered_instructions(engine: Engine) -> None:
    run = engine.start("demo", {"ticket_id": "T-42"}, actor="agent:bot")
    assert run.status == "active" and run.tier == 2
    assert [s.id for s in run.ready_steps] == ["gather"]
    assert run.ready_steps[0].instructions == "Look at T-42."
    assert states(engine, run.id) == {"gather": "ready", "extra": "locked", "review": "locked"}
    assert events(engine, run.id) == [(None, "routed", "system:tiergate"), (None, "started", "agent:bot"),
                                      ("gather", "step_ready", "system:tiergate")]
    routed = engine.log(run.id)[0]["detail"]
    assert routed["tier"] == 2 and routed["matched_rule"] == "rule_tier2_structured"
    assert routed["inputs"]["process_id"] == "demo" and routed["inputs"]["structured"] is True


def test_start_data_is_checked_against_inputs(engine: Engine) -> None:
    with pytest.raises(InvalidDataError) as err:
        engine.start("demo", {"ticket_id": "X-1"}, actor="agent:bot")
    assert err.value.code == "invalid_data"
    assert err.value.details["errors"][0]["pointer"] == "/ticket_id"
    assert "does not match" in err.value.details["errors"][0]["message"]
    assert engine.runs() == []


def test_unknown_process_and_run(engine: Engine) -> None:
    with pytest.raises(NotFoundError, match="process 'nope' is not in the catalog.*Known processes: demo"):
        engine.start("nope", {}, actor="agent:bot")
    with pytest.raises(NotFoundError, match="no run 'abc'"):
        engine.status("abc")


def test_full_run_with_skip_and_four_eyes(engine: Engine) -> None:
    run = engine.start("demo", {"ticket_id": "T-1"}, actor="agent:bot")
    after = engine.complete(run.id, "gather", GOOD, actor="agent:bot")
    assert [s.id for s in after.ready_steps] == ["extra"]
    engine.skip(run.id, "extra", "nothing extra to check", actor="agent:bot")
    done = engine.complete(run.id, "review", {"approved": True}, actor="human:alice")
    assert done.status == "completed" and done.ended_at is not None
    assert done.data == {"ticket_id": "T-1", **GOOD, "approved": True}
    assert events(engine, run.id) == [
        (None, "routed", "system:tiergate"), (None, "started", "agent:bot"), ("gather", "step_ready", "system:tiergate"),
        ("gather", "step_completed", "agent:bot"), ("extra", "step_ready", "system:tiergate"),
        ("extra", "step_skipped", "agent:bot"), ("review", "step_ready", "system:tiergate"),
        ("review", "step_completed", "human:alice"), (None, "completed", "system:tiergate"),
    ]
    assert engine.verify_log()["ok"] is True


def _refused(engine: Engine, run_id: str, call: Any, reason: str) -> RefusedError:
    before = row(engine, run_id)
    entries_before = len(engine.log(run_id))
    with pytest.raises(RefusedError) as err:
        call()
    assert err.value.reason == reason
    after = row(engine, run_id)
    for column in ("state", "status", "version", "updated_at"):
        assert after[column] == before[column], column
    log = engine.log(run_id)
    assert len(log) == entries_before + 1
    assert log[-1]["event"] == "refused" and log[-1]["detail"]["reason"] == reason
    return err.value


def test_each_refusal_changes_nothing_and_is_logged(engine: Engine) -> None:
    run = engine.start("demo", {"ticket_id": "T-1"}, actor="agent:bot")
    err = _refused(engine, run.id, lambda: engine.complete(run.id, "review", {"approved": True}, actor="human:alice"),
                   "not_ready")
    assert "waits for gather, extra" in err.message
    _refused(engine, run.id, lambda: engine.complete(run.id, "nope", {}, actor="agent:bot"), "unknown_step")
    engine.complete(run.id, "gather", GOOD, actor="human:bob")
    err = _refused(engine, run.id, lambda: engine.complete(run.id, "gather", GOOD, actor="agent:bot"), "already_done")
    assert "already completed by human:bob" in err.message
    _refused(engine, run.id, lambda: engine.skip(run.id, "gather", "x", actor="agent:bot"), "already_done")
    engine.skip(run.id, "extra", "not needed here", actor="agent:bot")
    err = _refused(engine, run.id, lambda: engine.complete(run.id, "review", {"approved": True}, actor="agent:bot"),
                   "actor_not_allowed")
    assert "can only be done by humans" in err.message
    err = _refused(engine, run.id, lambda: engine.complete(run.id, "review", {"approved": True},
                                                           actor="human:mallory"), "actor_not_allowed")
    assert "needs a member of lead" in err.message
    err = _refused(engine, run.id, lambda: engine.complete(run.id, "review", {"approved": True}, actor="human:bob"),
                   "same_actor")
    assert "someone other than who did 'gather'" in err.message
    engine.complete(run.id, "review", {"approved": True}, actor="human:alice")
    _refused(engine, run.id, lambda: engine.complete(run.id, "review", {"approved": True}, actor="human:alice"),
             "run_not_active")
    assert engine.verify_log()["ok"] is True


def test_checks_happen_in_the_documented_order(engine: Engine) -> None:
    run = engine.start("demo", {"ticket_id": "T-1"}, actor="agent:bot")
    # Not ready beats wrong actor and bad evidence.
    with pytest.raises(RefusedError) as err:
        engine.complete(run.id, "review", {"approved": "no"}, actor="agent:bot")
    assert err.value.reason == "not_ready"
    engine.complete(run.id, "gather", GOOD, actor="agent:bot")
    engine.skip(run.id, "extra", "n/a", actor="agent:bot")
    # Wrong actor beats bad evidence.
    with pytest.raises(RefusedError) as err:
        engine.complete(run.id, "review", {"approved": "no"}, actor="agent:bot")
    assert err.value.reason == "actor_not_allowed"


def test_gate_failure_lists_each_field_and_changes_nothing(engine: Engine) -> None:
    run = engine.start("demo", {"ticket_id": "T-1"}, actor="agent:bot")
    before = row(engine, run.id)
    with pytest.raises(GateFailedError) as err:
        engine.complete(run.id, "gather", {"summary": "short", "severity": "S9"}, actor="agent:bot")
    errors = err.value.details["errors"]
    assert [(e["pointer"], e["keyword"]) for e in errors] == [("/severity", "enum"), ("/summary", "minLength")]
    assert "/severity: 'S9' is not one of ['S1', 'S2', 'S3', 'S4']" in err.value.message
    with pytest.raises(GateFailedError) as err:
        engine.complete(run.id, "gather", {}, actor="agent:bot")
    assert [e["pointer"] for e in err.value.details["errors"]] == ["/severity", "/summary"]
    assert "/summary: required field 'summary' is missing" in err.value.message
    after = row(engine, run.id)
    assert (after["state"], after["version"]) == (before["state"], before["version"])
    failures = [e for e in engine.log(run.id) if e["event"] == "gate_failed"]
    assert len(failures) == 2
    assert failures[0]["detail"]["evidence"] == {"summary": "short", "severity": "S9"}
    assert failures[0]["actor"] == "agent:bot" and failures[0]["step"] == "gather"


def test_evidence_must_be_an_object(engine: Engine) -> None:
    run = engine.start("demo", {"ticket_id": "T-1"}, actor="agent:bot")
    with pytest.raises(InvalidDataError, match="must be a JSON object"):
        engine.complete(run.id, "gather", ["not", "an", "object"], actor="agent:bot")


def test_skip_rules(engine: Engine) -> None:
    run = engine.start("demo", {"ticket_id": "T-1"}, actor="agent:bot")
    _refused(engine, run.id, lambda: engine.skip(run.id, "gather", "lazy", actor="agent:bot"), "not_optional")
    engine.complete(run.id, "gather", GOOD, actor="agent:bot")
    with pytest.raises(UsageError, match="needs a reason"):
        engine.skip(run.id, "extra", "   ", actor="agent:bot")
    skipped = engine.skip(run.id, "extra", "covered by gather", actor="agent:bot")
    step = next(s for s in skipped.steps if s.id == "extra")
    assert (step.state, step.reason, step.actor) == ("skipped", "covered by gather", "agent:bot")


def test_cancel(engine: Engine) -> None:
    run = engine.start("demo", {"ticket_id": "T-1"}, actor="agent:bot")
    with pytest.raises(RefusedError) as err:
        engine.cancel(run.id, "done elsewhere", actor="agent:other")
    assert err.value.reason == "actor_not_allowed"
    with pytest.raises(UsageError):
        engine.cancel(run.id, "", actor="human:alice")
    cancelled = engine.cancel(run.id, "duplicate ticket", actor="agent:bot")
    assert cancelled.status == "cancelled"
    assert engine.log(run.id)[-1]["event"] == "cancelled"
    assert engine.log(run.id)[-1]["detail"] == {"reason": "duplicate ticket"}
    _refused(engine, run.id, lambda: engine.complete(run.id, "gather", GOOD, actor="agent:bot"), "run_not_active")
    _refused(engine, run.id, lambda: engine.cancel(run.id, "again", actor="human:alice"), "run_not_active")


def test_actor_is_required_and_system_cannot_be_claimed(engine: Engine) -> None:
    with pytest.raises(UsageError) as err:
        engine.start("demo", {"ticket_id": "T-1"}, actor=None)
    assert err.value.code == "actor_missing"
    with pytest.raises(UsageError, match="reserved for the engine"):
        engine.start("demo", {"ticket_id": "T-1"}, actor="system:tiergate")
    with pytest.raises(UsageError, match="not valid"):
        engine.start("demo", {"ticket_id": "T-1"}, actor="robot")


OVERWRITE = """\
id: overwrite
title: Data clashes
owner: lead
expected_minutes: 5
steps:
  - id: first
    title: First
    done_when: {type: object, required: [status], properties: {status: {type: string}}}
  - id: second
    title: Second writes status again
    done_when: {type: object, required: [status], properties: {status: {type: string}}}
  - id: third
    title: Third may change it
    may_overwrite: [status]
    instructions: "Status so far: {{ data.status }} (from {{ steps.first.evidence.status }})"
    done_when: {type: object, required: [status], properties: {status: {type: string}}}
"""


def test_evidence_keys_never_overwrite_silently(home: Any, make_engine: Any) -> None:
    home.checklist("overwrite", OVERWRITE)
    engine = make_engine(home)
    run = engine.start("overwrite", {}, actor="agent:bot")
    engine.complete(run.id, "first", {"status": "open"}, actor="agent:bot")
    err = _refused(engine, run.id, lambda: engine.complete(run.id, "second", {"status": "closed"}, actor="agent:bot"),
                   "data_conflict")
    assert "'status' (set by first)" in err.message and "may_overwrite" in err.message
    # The same value is not a clash.
    info = engine.complete(run.id, "second", {"status": "open"}, actor="agent:bot")
    assert info.ready_steps[0].instructions == "Status so far: open (from open)"
    done = engine.complete(run.id, "third", {"status": "resolved"}, actor="agent:bot")
    assert done.data["status"] == "resolved" and done.status == "completed"
    entry = [e for e in engine.log(run.id) if e["event"] == "step_completed"][-1]
    assert entry["detail"]["overwrote"] == {"status": {"was": "open", "by": "second"}}


OPTIONAL_TAIL = """\
id: tail
title: Optional last step
owner: lead
expected_minutes: 5
steps:
  - id: work
    title: Work
    done_when: {type: object}
  - id: polish
    title: Polish
    optional: true
    done_when: {type: object}
"""


def test_run_completes_when_required_steps_are_done(home: Any, make_engine: Any) -> None:
    home.checklist("tail", OPTIONAL_TAIL)
    engine = make_engine(home)
    run = engine.start("tail", {}, actor="human:alice")
    done = engine.complete(run.id, "work", {}, actor="human:alice")
    assert done.status == "completed"
    assert {s.id: s.state for s in done.steps} == {"work": "done", "polish": "skipped"}
    assert events(engine, run.id)[-3:] == [("polish", "step_ready", "system:tiergate"),
                                           ("polish", "step_skipped", "system:tiergate"),
                                           (None, "completed", "system:tiergate")]


PARALLEL = """\
id: parallel
title: Graph of steps
owner: lead
expected_minutes: 5
steps:
  - id: start
    title: Start
    done_when: {type: object}
  - id: left
    title: Left
    after: [start]
    done_when: {type: object}
  - id: right
    title: Right
    after: [start]
    done_when: {type: object}
  - id: join
    title: Join
    after: [left, right]
    done_when: {type: object}
"""


def test_steps_form_a_graph(home: Any, make_engine: Any) -> None:
    home.checklist("parallel", PARALLEL)
    engine = make_engine(home)
    run = engine.start("parallel", {}, actor="agent:a")
    after_start = engine.complete(run.id, "start", {}, actor="agent:a")
    assert [s.id for s in after_start.ready_steps] == ["left", "right"]
    after_right = engine.complete(run.id, "right", {}, actor="agent:b")
    assert [s.id for s in after_right.ready_steps] == ["left"]
    after_left = engine.complete(run.id, "left", {}, actor="agent:a")
    assert [s.id for s in after_left.ready_steps] == ["join"]


def test_durations_are_measured_from_ready(demo_home: Any, make_engine: Any) -> None:
    clock = [datetime(2026, 1, 5, 9, 0, tzinfo=timezone.utc)]
    engine = make_engine(demo_home, clock=lambda: clock[0])
    run = engine.start("demo", {"ticket_id": "T-1"}, actor="agent:bot")
    clock[0] += timedelta(minutes=7, seconds=30)
    engine.complete(run.id, "gather", GOOD, actor="agent:bot")
    entry = next(e for e in engine.log(run.id) if e["event"] == "step_completed")
    assert entry["duration_s"] == 450.0
    assert entry["at"] == "2026-01-05T09:07:30.000000Z"


def test_evidence_is_data_not_template(engine: Engine) -> None:
    run = engine.start("demo", {"ticket_id": "T-1"}, actor="agent:bot")
    hostile = {"summary": "{{ 7*7 }} {{ ''.__class__ }} {% for x in range(3) %}x{% endfor %}", "severity": "S1"}
    engine.complete(run.id, "gather", hostile, actor="agent:bot")
    info = engine.status(run.id)
    assert info.data["summary"] == hostile["summary"]
    assert engine.log(run.id)[3]["detail"]["evidence"]["summary"] == hostile["summary"]


def test_runs_listing_filters(engine: Engine) -> None:
    first = engine.start("demo", {"ticket_id": "T-1"}, actor="agent:bot")
    second = engine.start("demo", {"ticket_id": "T-2"}, actor="human:alice")
    engine.cancel(second.id, "mistake", actor="human:alice")
    assert {r["id"] for r in engine.runs()} == {first.id, second.id}
    assert [r["id"] for r in engine.runs(status="cancelled")] == [second.id]
    assert [r["id"] for r in engine.runs(process="demo", status="active")] == [first.id]
    with pytest.raises(UsageError, match="unknown status 'weird'"):
        engine.runs(status="weird")
