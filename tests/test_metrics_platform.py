"""Metrics and gaps on a log made by real runs of the platform's own processes, in all three tiers."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Callable

import pytest

from support import CLIResult
from tiergate.engine import Engine
from tiergate.errors import GateFailedError

TRIAGE = {"ticket_id": "SUP-10234", "client_id": "CL-0042", "client_tier": "gold",
          "summary": "Payslips show the wrong overtime rate since the last release"}
GATHER = {"duplicate_of": None, "next_pay_date": "2026-11-30", "context_notes": "Overtime element changed in 4.2"}
CLASSIFY = {"issue_category": "pay-calculation", "client_tier": "gold", "severity": "S2",
            "severity_rationale": "Forty employees paid at the wrong rate", "pay_impact": True}
ASSIGN = {"assigned_queue": "pay-and-statutory", "assignee": "kim", "assigned_at": "2026-11-25T10:00:00Z"}
ACKNOWLEDGE = {"acknowledged_at": "2026-11-25T10:05:00Z", "acknowledgement_url": "https://tickets.example/SUP-10234",
               "next_update_due": "2026-11-25T14:00:00Z"}
HAND_OFF = {"triage_outcome": "handed-to-queue", "handoff_note": "Overtime multiplier misread; see the context notes."}
BOT, KIM = "agent:triage-bot", "human:kim"
LOW = """\
frequent_skip: {skip_share: 0.3, min_ready: 2}
timer_escalation: {escalations_per_ready: 0.1, min_escalations: 1}
gate_failure: {first_attempt_failure_share: 0.2, min_first_attempts: 2}
"""


def triage(engine: Engine, *, takeover: bool = False, finish: bool = True) -> str:
    run = engine.start("support-triage", TRIAGE, actor=BOT).id
    engine.complete(run, "gather-context", GATHER, actor=BOT)
    if not finish:
        return run
    engine.skip(run, "reproduce", "a configuration question: nothing to reproduce", actor=BOT)
    if takeover:
        with pytest.raises(GateFailedError):
            engine.complete(run, "classify", {"issue_category": "payroll", "severity": "urgent"}, actor=BOT)
        engine.complete(run, "classify", CLASSIFY, actor=KIM)
    else:
        engine.complete(run, "classify", CLASSIFY, actor=BOT)
    engine.complete(run, "assign", ASSIGN, actor=BOT)
    engine.complete(run, "acknowledge", ACKNOWLEDGE, actor=BOT)
    assert engine.complete(run, "hand-off", HAND_OFF, actor=BOT).status == "completed"
    return run


def knowledge_walk(engine: Engine) -> str:
    """The statutory knowledge walk-through of the Tier 1 tests: escalated, rejected, reworked."""
    from test_tier1_platform_files import WALKS, _actor, model
    from tiergate.worker import run_pass

    walk = WALKS["knowledge: statutory item escalated, rejected, reworked and approved by compliance"]
    m = model(walk.process)
    run = engine.start(walk.process, {}, actor=_actor(m, walk.steps[0][0], {})).id
    done_by: dict[str, str] = {}
    for step, evidence in walk.steps:
        if step == "timer":
            assert run_pass(engine, now=datetime.now(timezone.utc) + timedelta(days=4))
            continue
        if step == "message":  # the source system confirms it links the published article
            engine.message(evidence["name"], evidence["correlate"], evidence["data"], actor="agent:source-sync")
            continue
        actor = _actor(m, step, done_by)
        engine.complete(run, step, evidence, actor=actor)
        done_by[step] = actor
    assert engine.status(run).status == "completed"
    return run


@pytest.fixture
def platform(repo_home: Path, make_engine: Callable[..., Engine]) -> Engine:
    engine = make_engine(repo_home)
    triage(engine)
    triage(engine, takeover=True)
    triage(engine, finish=False)
    answered = engine.start("knowledge-qa", {"question": "Which overtime rate applies on bank holidays?"},
                            actor="agent:kb-bot").id
    engine.complete(answered, None, {"answer": "Double time.", "sources": ["KB-12"]}, actor="agent:kb-bot")
    engine.start("knowledge-qa", {"question": "Is the lower earnings limit changing?"}, actor="agent:kb-bot")
    knowledge_walk(engine)
    return engine


def process(answer: dict[str, Any], pid: str) -> dict[str, Any]:
    return next(p for p in answer["processes"] if p["process"] == pid)


def step(p: dict[str, Any], sid: str) -> dict[str, Any]:
    return next(s for s in p["steps"] if s["step"] == sid)


def test_metrics_of_real_runs_in_every_tier(platform: Engine) -> None:
    answer = platform.metrics()
    assert [(p["process"], p["tier"]) for p in answer["processes"]] == \
        [("knowledge-ingestion", 1), ("knowledge-qa", 3), ("support-triage", 2)]
    assert [t["tier"] for t in answer["tiers"]] == [1, 2, 3] and answer["totals"]["runs"] == 6

    triage_ = process(answer, "support-triage")
    assert (triage_["runs"], triage_["outcomes"]["completed"], triage_["outcomes"]["in_progress"]) == (3, 2, 1)
    assert [s["step"] for s in triage_["steps"]] == ["gather-context", "reproduce", "classify", "route", "assign",
                                                     "acknowledge", "hand-off"]
    assert (step(triage_, "reproduce")["ready"], step(triage_, "reproduce")["skipped"],
            step(triage_, "reproduce")["left_ready"]) == (3, 2, 1)
    classify = step(triage_, "classify")
    assert (classify["gate_failures"], classify["takeovers"], classify["completed_by"]) == \
        (1, 1, {"agent": 1, "human": 1, "system": 0})
    assert step(triage_, "route")["completed_by"] == {"agent": 0, "human": 0, "system": 2}
    assert triage_["completion"]["intervened"] == 2    # both skipped reproduce
    assert triage_["human_intervention"]["takeovers"] == 1

    qa = process(answer, "knowledge-qa")
    assert (qa["runs"], qa["outcomes"]["completed"], qa["outcomes"]["in_progress"]) == (2, 1, 1)
    assert step(qa, "work")["left_ready"] == 1

    knowledge = process(answer, "knowledge-ingestion")
    assert (knowledge["runs"], knowledge["outcomes"]["completed"], knowledge["completion"]["intervened"]) == (1, 1, 1)
    by_kind = knowledge["deviations"]["by_kind"]
    assert by_kind["escalated"]["count"] == 1 and by_kind["off_path"]["count"] >= 1
    off_path_steps = [s["step"] for s in knowledge["steps"] if s["off_path"]]
    assert "rework_item" in off_path_steps
    assert step(knowledge, "approve_statutory_item")["completed"] == 2    # rejected once, then approved


def test_gaps_of_real_runs(platform: Engine) -> None:
    (platform.home.root / "tiers" / "gaps.yaml").write_text(LOW)
    found = {(g["kind"], g["process"], g["step"]): g for g in platform.gaps()["gaps"]}
    skip = found[("frequent_skip", "support-triage", "reproduce")]
    assert (skip["occurrences"], skip["category"], skip["owner"]) == (2, "process-design", "platform-lead")
    escalation = next(g for (kind, pid, _s), g in found.items()
                      if kind == "timer_escalation" and pid == "knowledge-ingestion")
    # Tier 1, once: the isolated-escalation rule of decisions/gap_classification.dmn.
    assert (escalation["tier"], escalation["matched_rule"], escalation["category"]) == \
        (1, "rule_timer_escalation_isolated", "process-design")


def test_the_cli_on_the_platform_log(platform: Engine, cli: Callable[..., CLIResult], tmp_path: Path) -> None:
    home = platform.home.root
    answer = cli("metrics", "--json", home=home)
    assert answer.returncode == 0, answer
    assert answer.json["data"]["totals"]["runs"] == 6
    tier1 = cli("metrics", "--tier", "1", home=home)
    assert tier1.returncode == 0 and "knowledge-ingestion" in tier1.stdout and "support-triage" not in tier1.stdout
    gaps = cli("gaps", "--json", home=home)
    assert gaps.returncode == 0 and gaps.json["ok"] is True
    report = cli("report", "--html", str(tmp_path / "platform.html"), home=home)
    assert report.returncode == 0, report
    assert "knowledge-ingestion (tier 1)" in (tmp_path / "platform.html").read_text()


def test_the_summary_of_real_runs_answers_as_the_log_does(platform: Engine) -> None:
    """Tier 1 off-path entries and escalations, Tier 2 refusals, Tier 3 runs: the summary adds them up alike."""
    for scope in ({}, {"tier": 1}, {"tier": 2}, {"tier": 3}, {"process": "support-triage"}):
        answers = [platform.metrics(**scope, from_log=from_log) for from_log in (False, True)]  # type: ignore[arg-type]
        for answer in answers:
            answer["scope"].pop("as_of")  # the platform's clock is the real one
        assert answers[0] == answers[1], scope
