"""The run page's data and the leads' pages' data, from the operations layer and the JSON API.

The operations answer what the web pages render (``tiergate.runpage``); the API routes answer
the same operation, checked here through a real `tiergate serve` with httpx.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable, Iterator

import httpx2 as httpx
import pytest
import sqlalchemy as sa

from serving import running_server
from support import CLIResult
from test_tier1_platform_files import start_walk
from tier1_helpers import bpmn, chain, tier1_home, user
from tiergate.engine import Engine
from tiergate.operations import Caller, Operations

KNOWLEDGE = "knowledge: an internal note at low confidence is Tier 3 but a curator approves it"
DIRECT = Caller()


def start_knowledge(engine: Engine) -> str:
    """A knowledge-ingestion run past its first step: its decision evaluated, a curator's step ready."""
    return start_walk(engine, KNOWLEDGE)


PUBLISHED = "knowledge: a trusted how-to is auto-approved and published"


def test_a_finished_run_marks_the_gateways_and_the_end_event_it_passed(repo_home: Path,
                                                                       make_engine: Callable[..., Engine]) -> None:
    engine = make_engine(repo_home)
    run_id = start_walk(engine, PUBLISHED, steps=3)
    view = Operations(engine).run_view(DIRECT, run_id)
    assert view["run"]["status"] == "completed"
    elements = view["diagram"]["elements"]
    assert set(elements.values()) == {"finished"}
    assert {"material_received", "auto_approved", "extract_item", "publish_item", "knowledge_published"} <= \
        set(elements)
    assert "approver_role_gateway" not in elements and "approve_curated_item" not in elements  # not taken


def test_a_tier1_run_view_marks_elements_and_shows_its_decisions(repo_home: Path,
                                                                  make_engine: Callable[..., Engine]) -> None:
    engine = make_engine(repo_home)
    run_id = start_knowledge(engine)
    view = Operations(engine).run_view(DIRECT, run_id)
    assert view["run"]["id"] == run_id and view["run"]["ready"] == ["approve_curated_item"]
    assert view["verify"] == {"ok": True, "entries": len(engine.log(run_id)), "broken": None,
                              "definition_tampered": False}
    elements = view["diagram"]["elements"]
    assert elements["extract_item"] == "finished" and elements["route_validation"] == "finished"
    assert elements["approve_curated_item"] == "ready" and elements["curator_approval_overdue"] == "waiting"
    # The start event and the gateways the engine passed (kept in the run's state: the log names no gateway).
    assert sorted(e for e, state in elements.items() if state == "finished" and e not in
                  ("extract_item", "route_validation")) == ["approver_role_gateway", "auto_approved",
                                                            "material_received"]
    assert "approve_statutory_item" not in elements  # a branch not taken is not marked
    assert view["diagram"]["bpmn"].startswith("<?xml") and 'id="approve_curated_item"' in view["diagram"]["bpmn"]
    # Who did what and when: the log of the run, with actors and doors.
    completed = [e for e in view["log"] if e["event"] == "step_completed"]
    assert [(e["step"], e["actor"], e["door"]) for e in completed] == [("extract_item", "agent:platform-bot",
                                                                        "direct")]
    # The decisions: routing at the start, the business rule task after the first step.
    routed, evaluated = view["decisions"]
    assert (routed["decision"], routed["outputs"]["tier"], routed["matched_rules"]) == \
        ("tier_routing", 1, ["rule_tier1_compliance"])
    assert routed["inputs"]["process_id"] == "knowledge-ingestion"
    assert (evaluated["decision"], evaluated["element"]) == ("knowledge_validation_routing", "route_validation")
    assert evaluated["matched_rules"] == ["rule_internal_note_low_confidence"]
    assert evaluated["inputs"]["knowledge_type"] == "internal-note"
    assert evaluated["outputs"]["approver_role"] == "knowledge-curator"
    table = view["tables"]["knowledge_validation_routing"]
    assert table["from"] == "pinned with the run's definition"
    assert 'id="rule_internal_note_low_confidence"' in table["xml"]
    assert 'id="rule_tier1_compliance"' in view["tables"]["tier_routing"]["xml"]
    rows = {rule["id"]: rule for rule in table["table"]["rules"]}  # the table for a page without scripts
    assert table["table"]["inputs"] == ["Knowledge type", "Source", "Confidence"]
    assert rows["rule_internal_note_low_confidence"]["outputs"][1] == '"knowledge-curator"'


def test_the_pinned_table_is_shown_after_the_home_changes(repo_home: Path,
                                                          make_engine: Callable[..., Engine]) -> None:
    engine = make_engine(repo_home)
    run_id = start_knowledge(engine)
    path = repo_home / "decisions" / "knowledge_validation_routing.dmn"
    path.write_text(path.read_text().replace("rule_internal_note_low_confidence", "rule_renamed"))
    view = Operations(make_engine(repo_home)).run_view(DIRECT, run_id)
    assert 'id="rule_internal_note_low_confidence"' in view["tables"]["knowledge_validation_routing"]["xml"]


def _sql(engine: Engine, statement: str, **params: Any) -> None:
    with engine.db.write() as conn:
        conn.execute(sa.text(statement), params)


def test_the_view_verifies_its_own_runs_chain_only(repo_home: Path, make_engine: Callable[..., Engine]) -> None:
    engine = make_engine(repo_home)
    edited, other = start_knowledge(engine), start_knowledge(engine)
    target = next(e["id"] for e in engine.log(edited) if e["event"] == "step_completed")
    _sql(engine, "UPDATE log_entries SET actor_id = 'someone-else' WHERE id = :id", id=target)
    ops = Operations(engine)
    verify = ops.run_view(DIRECT, edited)["verify"]
    assert verify["ok"] is False and verify["broken"]["entry_id"] == target
    assert "edited" in verify["broken"]["problem"]
    assert ops.run_view(DIRECT, other)["verify"]["ok"] is True
    assert engine.verify_log()["ok"] is False  # the whole log's check still finds it


SCRIPTED = bpmn("scripted", (
    '<bpmn:startEvent id="start"/>' + user("enter", gate={"type": "object"})
    + '<bpmn:scriptTask id="compute"><bpmn:script>ratio = passed / total</bpmn:script></bpmn:scriptTask>'
    + user("good") + '<bpmn:endEvent id="end"/>' + chain("start", "enter", "compute", "good", "end")))


def test_a_failed_element_is_marked_failed(tmp_path: Path, make_engine: Callable[..., Engine]) -> None:
    engine = make_engine(tier1_home(tmp_path / "home", {"scripted": SCRIPTED}))
    run = engine.start("scripted", {"total": 0}, actor="agent:a")
    engine.complete(run.id, "enter", {"passed": 5}, actor="agent:a")
    elements = Operations(engine).run_view(DIRECT, run.id)["diagram"]["elements"]
    assert elements["compute"] == "failed" and elements["enter"] == "finished"
    assert "good" not in elements


def test_a_tier2_run_has_no_diagram_and_its_routing_decision(demo_home: Any,
                                                             make_engine: Callable[..., Engine]) -> None:
    engine = make_engine(demo_home)
    run = engine.start("demo", {"ticket_id": "T-1"}, actor="agent:a")
    view = Operations(engine).run_view(DIRECT, run.id)
    assert view["diagram"] is None
    assert [d["decision"] for d in view["decisions"]] == ["tier_routing"]
    assert view["decisions"][0]["outputs"]["tier"] == 2


def test_an_unknown_run_is_not_found(repo_home: Path, make_engine: Callable[..., Engine]) -> None:
    from tiergate.errors import NotFoundError

    with pytest.raises(NotFoundError):
        Operations(make_engine(repo_home)).run_view(DIRECT, "nope")


def test_the_catalog_says_each_process_tier_and_why(repo_home: Path, make_engine: Callable[..., Engine]) -> None:
    catalog = {p["id"]: p for p in Operations(make_engine(repo_home)).catalog(DIRECT)}
    knowledge = catalog["knowledge-ingestion"]
    assert knowledge["tier"] == 1 and knowledge["route"]["matched_rule"] == "rule_tier1_compliance"
    assert knowledge["route"]["inputs"]["compliance_critical"] is True and knowledge["rationale"]
    assert catalog["support-triage"]["tier"] == 2


# --- the same through `tiergate serve` -------------------------------------------------------

@pytest.fixture
def served(repo_home: Path, db_url: str, tmp_path: Path) -> Iterator[str]:
    """`tiergate serve` over the repository's definitions, with human:judy an auditor (she reads the metrics)."""
    with (repo_home / "tiers" / "roles.yaml").open("a") as roles:
        roles.write("  auditor:\n    description: Reads every run, the log, metrics and gaps.\n"
                    "    members: [human:judy]\n")
    with running_server(repo_home, db_url, tmp_path / "server.log") as server:
        yield server.url


def test_the_api_answers_the_same_operations(served: str, repo_home: Path, cli: Callable[..., CLIResult],
                                             make_engine: Callable[..., Engine]) -> None:
    engine = make_engine(repo_home)
    run_id = start_knowledge(engine)
    # judy is a knowledge-curator: the run's process names her role, so she reads the run
    issued = cli("tokens", "issue", "human:judy", "--json", home=repo_home)
    assert issued.returncode == 0, issued
    with httpx.Client(base_url=served, timeout=60,
                      headers={"Authorization": f"Bearer {issued.json['data']['token']}"}) as client:
        answer = client.get(f"/api/runs/{run_id}/view").json()
        assert answer["ok"] is True
        expected = json.loads(json.dumps(Operations(engine).run_view(DIRECT, run_id)))
        assert answer["data"]["diagram"] == expected["diagram"]
        assert answer["data"]["decisions"] == expected["decisions"] and answer["data"]["verify"]["ok"] is True
        assert answer["data"]["log"] == expected["log"]
        missing = client.get("/api/runs/nope/view")
        assert missing.status_code == 404 and missing.json()["error"]["code"] == "not_found"
        catalog = client.get("/api/catalog").json()["data"]
        assert {p["id"]: p["route"]["matched_rule"] for p in catalog}["knowledge-ingestion"] == "rule_tier1_compliance"
        report = client.get("/api/report").json()["data"]
        assert report["metrics"]["totals"]["runs"] == 1 and "gaps" in report["gaps"]
        paths = client.get("/api/openapi.json").json()["paths"]
        assert {"/api/runs/{run}/view", "/api/catalog", "/api/report"} <= set(paths)
        assert httpx.get(f"{served}/api/catalog", timeout=30).status_code == 401


def test_a_tier2_decide_step_shows_its_decision_and_pinned_table(repo_home: Path,
                                                                 make_engine: Callable[..., Engine]) -> None:
    from test_metrics_platform import triage

    engine = make_engine(repo_home)
    run_id = triage(engine)
    view = Operations(engine).run_view(DIRECT, run_id)
    assert view["diagram"] is None and view["run"]["status"] == "completed"
    decided = [d for d in view["decisions"] if d["event"] == "decision_evaluated"]
    assert [(d["decision"], d["inputs"]["issue_category"]) for d in decided] == [("support_triage", "pay-calculation")]
    rules = {rule["id"] for rule in view["tables"]["support_triage"]["table"]["rules"]}
    assert decided[0]["matched_rules"] and set(decided[0]["matched_rules"]) <= rules
    assert view["tables"]["support_triage"]["from"] == "pinned with the run's definition"
    assert view["verify"]["ok"] is True
