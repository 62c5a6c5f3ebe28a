"""Tier 3: conventions served and logged at start, runs closed with an optional outcome, checks."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Callable

import pytest

from support import CLIResult, HomeBuilder, catalog_yaml
from tiergate.engine import Engine
from tiergate.errors import DefinitionError, InvalidDataError, RefusedError

Cli = Callable[..., CLIResult]
QUESTION = {"question": "Which overtime rate applies to bank holidays in 2026?", "asked_by": "human:kim"}
TRIAGE = {"ticket_id": "SUP-10234", "client_id": "CL-0042", "client_tier": "gold",
          "summary": "Payslips show the wrong overtime rate since the last release"}


@pytest.fixture
def platform(repo_home: Path, make_engine: Callable[..., Engine]) -> Engine:
    return make_engine(repo_home)


def _events(engine: Engine, run_id: str) -> list[tuple[str, str | None, str]]:
    return [(e["event"], e["step"], e["actor"]) for e in engine.log(run_id)]


def test_start_serves_the_conventions_and_logs_them(platform: Engine) -> None:
    run = platform.start("knowledge-qa", QUESTION, actor="agent:kb-bot")
    assert (run.tier, run.status, [s.id for s in run.ready_steps]) == (3, "active", ["work"])
    assert 'Question from human:kim: "Which overtime rate applies to bank holidays in 2026?"' in \
        run.ready_steps[0].instructions
    assert _events(platform, run.id) == [("routed", None, "system:tiergate"), ("started", None, "agent:kb-bot"),
                                         ("guidance_served", "work", "system:tiergate"),
                                         ("step_ready", "work", "system:tiergate")]
    log = platform.log(run.id)
    assert log[0]["detail"]["tier"] == 3 and log[0]["detail"]["matched_rule"] == "rule_tier3_default"
    assert log[1]["detail"] == {"data": QUESTION, "expected_minutes": 10}
    served = log[2]["detail"]
    assert served["template"] == "tiers/conventions/knowledge-qa.md.j2" and served["to"] == "agent:kb-bot"
    assert served["conventions"] == run.ready_steps[0].instructions
    assert "### Never state" in served["conventions"]


@pytest.mark.parametrize("process", ["knowledge-qa", "report-generation", "general-search"])
def test_every_platform_conventions_file_renders_with_and_without_start_data(platform: Engine, process: str) -> None:
    empty = platform.start(process, {}, actor="agent:bot")
    assert "ask" in empty.ready_steps[0].instructions  # says to ask for what is missing
    full = platform.start(process, {"question": "Q?", "report": "R", "period": "2026-01", "requested_by": "human:kim",
                                    "query": "year-end runbook", "scope": "docs site", "asked_by": "human:kim"},
                          actor="agent:bot")
    text = full.ready_steps[0].instructions
    for section in ("Never state", "Format"):
        assert f"### {section}" in text
    assert "close the run with an outcome" in text


def test_closing_without_step_completes_the_run_with_its_outcome(platform: Engine) -> None:
    run = platform.start("knowledge-qa", QUESTION, actor="agent:kb-bot")
    outcome = {"answered": True, "confidence": "high", "sources": ["KB-1234"]}
    closed = platform.complete(run.id, None, outcome, actor="agent:kb-bot")
    assert closed.status == "completed" and closed.ended_at is not None
    assert closed.steps[0].state == "done" and closed.steps[0].evidence == outcome
    assert _events(platform, run.id)[-2:] == [("step_completed", "work", "agent:kb-bot"),
                                              ("completed", None, "system:tiergate")]
    completed = platform.log(run.id)[-2]
    assert completed["detail"] == {"outcome": outcome} and completed["duration_s"] >= 0
    assert platform.verify_log()["ok"] is True


def test_closing_by_the_work_step_and_without_outcome(platform: Engine) -> None:
    run = platform.start("general-search", {"query": "year-end runbook"}, actor="agent:search-bot")
    platform.complete(run.id, "work", None, actor="human:bob")
    assert platform.log(run.id)[-2]["detail"] == {"outcome": None}
    assert platform.log(run.id)[-2]["actor"] == "human:bob"


def test_wrong_attempts_are_refused_and_logged(platform: Engine) -> None:
    run = platform.start("knowledge-qa", QUESTION, actor="agent:kb-bot")
    with pytest.raises(RefusedError) as err:
        platform.complete(run.id, "answer", {}, actor="agent:kb-bot")
    assert err.value.reason == "unknown_step"
    assert err.value.message == (f"run {run.id} is a tier 3 run: it has no step 'answer', only 'work'. Close it with "
                                 f"`tiergate complete {run.id}` (no step).")
    with pytest.raises(RefusedError) as err:
        platform.skip(run.id, "work", "not needed", actor="agent:kb-bot")
    assert err.value.reason == "not_optional"
    assert [e[0] for e in _events(platform, run.id)][-2:] == ["refused", "refused"]
    with pytest.raises(InvalidDataError) as usage:
        platform.complete(run.id, None, ["not", "an", "object"], actor="agent:kb-bot")
    assert usage.value.code == "invalid_evidence"
    assert [e[0] for e in _events(platform, run.id)][-1] == "refused"  # a malformed command is not logged
    platform.complete(run.id, None, {}, actor="agent:kb-bot")
    with pytest.raises(RefusedError) as err:
        platform.complete(run.id, None, {}, actor="agent:kb-bot")
    assert err.value.reason == "run_not_active"
    assert platform.status(run.id).status == "completed"


def test_open_past_expected_minutes_blocks_nothing(repo_home: Path, make_engine: Callable[..., Engine]) -> None:
    start = datetime(2026, 3, 2, 9, 0, tzinfo=timezone.utc)
    now = [start]
    engine = make_engine(repo_home, clock=lambda: now[0])
    run = engine.start("knowledge-qa", QUESTION, actor="agent:kb-bot")
    now[0] = start + timedelta(hours=30)  # expected: 10 minutes
    other = engine.start("knowledge-qa", QUESTION, actor="agent:kb-bot")
    assert engine.status(run.id).status == "active" and other.status == "active"
    engine.complete(run.id, None, {"answered": False}, actor="agent:kb-bot")
    assert engine.log(run.id)[-2]["duration_s"] == 30 * 3600


def test_cancel_a_tier3_run(platform: Engine) -> None:
    run = platform.start("report-generation", {"report": "SLA attainment"}, actor="agent:report-bot")
    with pytest.raises(RefusedError):
        platform.cancel(run.id, "not mine", actor="agent:other")
    assert platform.cancel(run.id, "asked twice", actor="agent:report-bot").status == "cancelled"


def test_a_run_keeps_the_conventions_it_was_started_with(platform: Engine, repo_home: Path) -> None:
    run = platform.start("knowledge-qa", QUESTION, actor="agent:kb-bot")
    path = repo_home / "tiers" / "conventions" / "knowledge-qa.md.j2"
    path.write_text(path.read_text().replace("### Never state", "### Do not ever state"))
    platform.reload()
    assert "### Never state" in platform.guide(run.id)["text"]
    fresh = platform.start("knowledge-qa", QUESTION, actor="agent:kb-bot")
    assert fresh.definition_version != run.definition_version
    assert "### Do not ever state" in platform.guide(fresh.id)["text"]


def test_processes_describes_tier3_entries(platform: Engine) -> None:
    entry = next(p for p in platform.processes() if p["id"] == "knowledge-qa")
    assert entry["tier"] == 3 and entry["steps"] == ["work"]
    assert entry["definitions"] == ["tiers/conventions/knowledge-qa.md.j2"]


def test_platform_check_has_no_tier3_warnings(platform: Engine) -> None:
    problems = platform.check()
    assert not [p for p in problems if p.path.startswith(("tiers/conventions/", "tiers/guidance/"))]
    for process in ("knowledge-qa", "report-generation", "general-search"):
        assert not [p for p in problems if f"'{process}'" in p.message]


# --- check ------------------------------------------------------------------------------------


def _tier3_home(home: HomeBuilder, source: str, name: str = "ask.md.j2", listed: tuple[str, ...] = ("ask",)) -> None:
    home.write("tiers/catalog.yaml", catalog_yaml(*listed).replace("structured: true", "structured: false"))
    home.write(f"tiers/conventions/{name}", source)


@pytest.mark.parametrize("source, name, listed, expected", [
    ("Answer.\n{% if data.q is defined %}\n{{ data.q }\n{% endif %}\n", "ask.md.j2", ("ask",),
     "tiers/conventions/ask.md.j2:3: conventions of 'ask': template syntax error: unexpected '}'"),
    ("Answer.\n\nThe question: {{ data.question }}\n", "ask.md.j2", ("ask",),
     "tiers/conventions/ask.md.j2:3: conventions of 'ask': 'dict object' has no attribute 'question'. Use only the "
     "names documented in docs/guidance.md, and put anything a run may lack behind `{% if ... is defined %}`."),
    ("{{ data.__class__ }}\n", "ask.md.j2", ("ask",),
     "tiers/conventions/ask.md.j2:1: conventions of 'ask': refused by the template sandbox"),
    ("Answer.\n", "other.md.j2", ("ask",),
     "tiers/conventions/other.md.j2:1: conventions 'other' are not in tiers/catalog.yaml. Add an entry for the "
     "process there"),
    ("Answer.\n", "Bad Name.md.j2", ("ask",), "tiers/conventions/Bad Name.md.j2:1: 'Bad Name' is not a process id"),
    ("Answer.\n", "ask.txt", ("ask",), "tiers/conventions/ask.txt:1: warning: ask.txt is not used: conventions are "
                                        "named <process id>.md.j2."),
])
def test_check_reports_conventions_problems_with_file_and_line(cli: Cli, home: HomeBuilder, source: str, name: str,
                                                               listed: tuple[str, ...], expected: str) -> None:
    _tier3_home(home, source, name, listed)
    result = cli("check", home=home)
    assert any(line.startswith(expected) for line in result.stdout.splitlines()), result
    as_json = cli("check", "--json", home=home).json
    if "warning" not in expected:
        assert result.returncode == 1 and as_json["error"]["code"] == "definitions_invalid"


def test_broken_conventions_refuse_new_runs(home: HomeBuilder, make_engine: Callable[..., Engine]) -> None:
    _tier3_home(home, "{{ data.question }}\n")
    engine = make_engine(home)
    with pytest.raises(DefinitionError) as err:
        engine.start("ask", {"question": "Q"}, actor="agent:bot")
    assert err.value.message.startswith("the conventions of 'ask' cannot be used until its problems are fixed:\n"
                                        "  tiers/conventions/ask.md.j2:1: conventions of 'ask': 'dict object' has no "
                                        "attribute 'question'")


def test_missing_conventions_refuse_the_run(home: HomeBuilder, make_engine: Callable[..., Engine]) -> None:
    home.write("tiers/catalog.yaml", catalog_yaml("ask").replace("structured: true", "structured: false"))
    with pytest.raises(RefusedError) as err:
        make_engine(home).start("ask", {}, actor="agent:bot")
    assert err.value.reason == "tier_definition_missing"
    assert "tiers/conventions/ask.md.j2 does not exist" in err.value.message


# --- the CLI ----------------------------------------------------------------------------------


def test_cli_tier3_start_guide_and_close(cli: Cli, repo_home: Path) -> None:
    started = cli("start", "knowledge-qa", "--data", json.dumps(QUESTION), "--actor", "agent:kb-bot", home=repo_home)
    assert started.returncode == 0, started
    assert "ready: work — Knowledge base question answering" in started.stdout
    assert "### Sources and citations" in started.stdout
    run_id = started.stdout.split()[1]
    guide = cli("guide", run_id, "--actor", "agent:kb-bot", home=repo_home)
    assert guide.returncode == 0 and guide.stdout.startswith(f"# Knowledge base question answering — run {run_id}")
    assert f"`tiergate complete {run_id} --outcome '{{...}}' --actor agent:kb-bot`" in guide.stdout
    closed = cli("complete", run_id, "--outcome", '{"answered": true}', "--actor", "agent:kb-bot", "--json",
                 home=repo_home)
    assert closed.returncode == 0, closed
    assert closed.json["data"]["status"] == "completed"
    log = cli("log", run_id, "--json", home=repo_home).json["data"]
    assert [e["event"] for e in log] == ["routed", "started", "guidance_served", "step_ready", "step_completed",
                                         "completed"]


def test_cli_complete_without_step_on_a_checklist_is_a_usage_error(cli: Cli, repo_home: Path) -> None:
    started = cli("start", "support-triage", "--data", json.dumps(TRIAGE), "--actor", "agent:triage-bot", "--json",
                  home=repo_home)
    run_id = started.json["data"]["id"]
    result = cli("complete", run_id, "--actor", "agent:triage-bot", home=repo_home)
    assert result.returncode == 2
    assert result.stderr.strip() == (f"error (usage): run {run_id} is a tier 2 run: name the step to complete. "
                                     "Ready now: gather-context. Only a tier 3 run is closed without a step. "
                                     f"`tiergate guide {run_id}` says what each ready step needs.")
    as_json = cli("complete", run_id, "--actor", "agent:triage-bot", "--json", home=repo_home)
    assert as_json.returncode == 2
    assert as_json.json["error"]["details"] == {"run": run_id, "tier": 2, "ready": ["gather-context"], "see": "guide"}
    # Nothing was logged for a malformed command.
    log = cli("log", run_id, "--json", home=repo_home).json["data"]
    assert [e["event"] for e in log] == ["routed", "started", "step_ready"]


def test_cli_outcome_must_be_json(cli: Cli, repo_home: Path) -> None:
    started = cli("start", "general-search", "--actor", "agent:s", "--json", home=repo_home)
    run_id = started.json["data"]["id"]
    result = cli("complete", run_id, "--outcome", "{nope", "--actor", "agent:s", home=repo_home)
    assert result.returncode == 2
    assert result.stderr.startswith("error (invalid_json): --outcome: invalid JSON at line 1 column 2")
    listed: Any = cli("complete", run_id, "--outcome", "[1]", "--actor", "agent:s", "--json", home=repo_home).json
    assert listed["error"]["code"] == "invalid_evidence"
