"""The four platform Tier 1 processes, run from the command line: every step its own process.

The walk-throughs and their evidence are the BPMN author's (tests/test_tier1_platform_files.py);
here each one goes through `tiergate start/complete/worker` subprocesses on the test database
(SQLite, or PostgreSQL with TIERGATE_TEST_DATABASE_URL), as people and agents would run them.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Callable

import pytest

from support import CLIResult
from test_tier1_platform_files import WALKS, _actor, model
from tiergate.engine import Engine

EXPECTED_PATHS = ["knowledge: an internal note at low confidence is Tier 3 but a curator approves it",
                  "config change: the expected path",
                  "release: production standard release, approved by a person",
                  "pay scenarios: clean cycle signed off"]


def _ok(result: CLIResult) -> dict[str, Any]:
    assert result.returncode == 0, result
    return result.json["data"]  # type: ignore[no-any-return]


@pytest.mark.slow
@pytest.mark.timeout(600)  # one CLI process per step; the config change's path runs the pay scenario cycle too
@pytest.mark.parametrize("name", EXPECTED_PATHS)
def test_each_platform_process_runs_to_completion_from_the_cli(name: str, repo_home: Path,
                                                               cli: Callable[..., CLIResult]) -> None:
    walk = WALKS[name]
    m = model(walk.process)
    first = walk.steps[0][0]
    run = _ok(cli("start", walk.process, "--actor", _actor(m, first, {}), "--json", home=repo_home))
    assert run["tier"] == 1
    done_by: dict[str, str] = {}
    for step, evidence in walk.steps:
        if step == "message":  # the source system answers, as the waiting run's guidance says
            correlate = [arg for key, value in evidence["correlate"].items() for arg in ("--correlate", f"{key}={value}")]
            run = _ok(cli("message", evidence["name"], *correlate, "--data", json.dumps(evidence["data"]),
                          "--actor", "agent:source-sync", "--json", home=repo_home))
            continue
        assert step in run["ready"], (step, run["ready"])
        actor = _actor(m, step, done_by)
        run = _ok(cli("complete", run["id"], step, "--evidence", json.dumps(evidence), "--actor", actor, "--json",
                      home=repo_home))
        done_by[step] = actor
    assert run["status"] == "completed"
    log = _ok(cli("log", run["id"], "--json", home=repo_home))
    assert [e["step"] for e in log if e["event"] == "step_completed" and e["actor"] != "system:tiergate"] == \
        [step for step, _ in walk.steps if step != "message"]
    assert _ok(cli("log", "verify", "--json", home=repo_home))["ok"] is True


@pytest.mark.slow
def test_an_escalation_timer_fires_through_the_worker_cli(repo_home: Path, cli: Callable[..., CLIResult],
                                                          make_engine: Callable[..., Engine]) -> None:
    walk = WALKS["pay scenarios: mismatches, defects, re-run, escalation and a rejected sign-off"]
    m = model(walk.process)
    timer_at = next(i for i, (step, _) in enumerate(walk.steps) if step == "timer")
    # The steps before the timer happened a week ago (an engine on that clock), so it is overdue now.
    past = make_engine(repo_home, clock=lambda: datetime.now(timezone.utc) - timedelta(days=7))
    done_by: dict[str, str] = {}
    run = past.start(walk.process, {}, actor=_actor(m, walk.steps[0][0], {}))
    for step, evidence in walk.steps[:timer_at]:
        done_by[step] = _actor(m, step, done_by)
        past.complete(run.id, step, evidence, actor=done_by[step])
    fired = _ok(cli("worker", "--once", "--json", home=repo_home))["fired"]
    assert [(f["run"], f["events"][:2]) for f in fired] == [(run.id, ["timer_fired", "escalated"])]
    status = _ok(cli("status", run.id, "--json", home=repo_home))
    assert sorted(status["ready"]) == ["compliance_signoff", "escalate_signoff"]
    for step, evidence in walk.steps[timer_at + 1:]:
        done_by[step] = _actor(m, step, done_by)
        status = _ok(cli("complete", run.id, step, "--evidence", json.dumps(evidence), "--actor", done_by[step],
                         "--json", home=repo_home))
    assert status["status"] == "completed"
    log = _ok(cli("log", run.id, "--json", home=repo_home))
    timer = next(e for e in log if e["event"] == "timer_fired")
    assert (timer["step"], timer["detail"]["timer"]) == ("compliance_signoff", "signoff_overdue")
    off_path = [e for e in log if e["event"] == "step_ready" and e["detail"].get("off_path")]
    assert off_path and all(e["detail"]["flow"] for e in off_path)


@pytest.mark.slow
def test_an_agent_attempt_at_a_human_task_is_refused_and_logged_from_the_cli(repo_home: Path,
                                                                            cli: Callable[..., CLIResult]) -> None:
    walk = WALKS["release: production standard release, approved by a person"]
    m = model(walk.process)
    (step, evidence), (approval, approval_evidence) = walk.steps[0], walk.steps[1]
    run = _ok(cli("start", walk.process, "--actor", _actor(m, step, {}), "--json", home=repo_home))
    run = _ok(cli("complete", run["id"], step, "--evidence", json.dumps(evidence), "--actor", _actor(m, step, {}),
                  "--json", home=repo_home))
    assert approval in run["ready"]
    refused = cli("complete", run["id"], approval, "--evidence", json.dumps(approval_evidence), "--actor",
                  "agent:release-bot", home=repo_home)
    assert refused.returncode == 1
    assert f"error (refused): step '{approval}' can only be done by humans; agent:release-bot is an agent" \
        in refused.stderr
    last = _ok(cli("log", run["id"], "--json", home=repo_home))[-1]
    assert (last["event"], last["step"], last["actor"], last["detail"]["reason"]) == \
        ("refused", approval, "agent:release-bot", "actor_not_allowed")
