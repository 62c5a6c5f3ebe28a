"""Deployments: files are drafts until deployed; runs start from the latest deployment and name it."""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import pytest
from support import CLIResult, HomeBuilder

from tiergate.engine import Engine
from tiergate.errors import NotFoundError, UsageError

TRIAGE = {"ticket_id": "SUP-10234", "client_id": "CL-0042", "client_tier": "gold",
          "summary": "Payslips show the wrong overtime rate"}
GATHER = {"duplicate_of": None, "next_pay_date": "2026-11-30", "context_notes": "Overtime element changed in 4.2"}
CLASSIFY = {"issue_category": "pay-calculation", "client_tier": "gold", "severity": "S2",
            "severity_rationale": "Forty employees paid at the wrong rate", "pay_impact": True}
BOT = "agent:triage-bot"


@pytest.fixture
def repo_home(repo_home: Path) -> Path:
    """The platform's definitions without tiers/policy.yaml: these tests are about deployments as such;
    who may deploy what is tests/test_change_authority.py's."""
    (repo_home / "tiers" / "policy.yaml").unlink()
    return repo_home


def _edit(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert old in text, old
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


def _to_route(engine: Engine, run_id: str) -> None:
    engine.complete(run_id, "gather-context", GATHER, actor=BOT)
    engine.skip(run_id, "reproduce", "nothing to reproduce", actor=BOT)
    engine.complete(run_id, "classify", CLASSIFY, actor=BOT)


def test_without_a_deployment_the_files_are_live(demo_home: HomeBuilder, make_engine: Callable[..., Engine]) -> None:
    engine = make_engine(demo_home)
    assert engine.deployments() == [] and engine.deployment_number is None
    run = engine.start("demo", {"ticket_id": "T-1"}, actor="agent:bot")
    routed = engine.log(run.id)[0]
    assert routed["event"] == "routed" and "deployment" not in routed["detail"]


def test_runs_start_from_the_latest_deployment_and_name_it(repo_home: Path,
                                                           make_engine: Callable[..., Engine]) -> None:
    engine = make_engine(repo_home)
    first = engine.deploy("human:bob")
    assert first["number"] == 1 and first["approval"] == {"kind": "bootstrap"} and first["actor"] == "human:bob"
    assert "decisions/support_triage.dmn" in first["changes"]["files"]["added"]
    before = engine.start("support-triage", TRIAGE, actor=BOT)

    # A draft edit changes nothing for new runs until it is deployed.
    _edit(repo_home / "decisions" / "support_triage.dmn", '<text>"P2"</text>', '<text>"P3"</text>')
    engine.reload()
    draft_run = engine.start("support-triage", TRIAGE, actor=BOT)
    assert draft_run.definition_version == before.definition_version

    second = make_engine(repo_home).deploy("human:bob")
    assert second["number"] == 2 and second["approval"] == {"kind": "direct"}
    assert second["changes"]["files"] == {"added": [], "removed": [], "changed": ["decisions/support_triage.dmn"]}
    assert second["changes"]["rules"]["changed"] >= 1
    after_engine = make_engine(repo_home)
    after = after_engine.start("support-triage", TRIAGE, actor=BOT)
    assert after.definition_version != before.definition_version

    # The run started before the deployment stays on its version; the new one decides with the new table.
    _to_route(after_engine, before.id)
    _to_route(after_engine, after.id)
    assert after_engine.status(before.id).data["priority"] == "P2"
    assert after_engine.status(after.id).data["priority"] == "P3"
    for run_id, number in ((before.id, 1), (after.id, 2)):
        log = after_engine.log(run_id)
        for event in ("routed", "started", "decision_evaluated"):
            entry = next(e for e in log if e["event"] == event)
            assert entry["detail"]["deployment"] == number, (event, entry)
            assert len(entry["version"]) == 64   # beside the content hash
    # Every routed entry names its deployment.
    routed = [e for r in after_engine.runs() for e in after_engine.log(r["id"]) if e["event"] == "routed"]
    assert [e["detail"]["deployment"] for e in routed].count(2) == 1 and len(routed) == 3
    assert all("deployment" in e["detail"] for e in routed)


def test_drafts_run_the_files_on_a_deployed_database(repo_home: Path, make_engine: Callable[..., Engine]) -> None:
    make_engine(repo_home).deploy("human:bob")
    _edit(repo_home / "decisions" / "support_triage.dmn", '<text>"P2"</text>', '<text>"P3"</text>')
    drafts = make_engine(repo_home, drafts=True)
    run = drafts.start("support-triage", TRIAGE, actor=BOT)
    _to_route(drafts, run.id)
    assert drafts.status(run.id).data["priority"] == "P3"
    assert drafts.log(run.id)[0]["detail"]["deployment"] == "drafts"


def test_rollback_deploys_an_earlier_deployment_again(repo_home: Path, make_engine: Callable[..., Engine]) -> None:
    make_engine(repo_home).deploy("human:bob")
    _edit(repo_home / "decisions" / "support_triage.dmn", '<text>"P2"</text>', '<text>"P3"</text>')
    make_engine(repo_home).deploy("human:bob")
    back = make_engine(repo_home).deploy("human:alice", from_number=1)
    assert back["number"] == 3 and back["redeploy_of"] == 1 and back["approval"] == {"kind": "rollback", "to": 1}
    assert back["changes"]["files"]["changed"] == ["decisions/support_triage.dmn"]
    engine = make_engine(repo_home)
    run = engine.start("support-triage", TRIAGE, actor=BOT)
    _to_route(engine, run.id)
    assert engine.status(run.id).data["priority"] == "P2"
    assert [d["number"] for d in engine.deployments()] == [1, 2, 3]


def test_deploy_refuses_what_it_must(repo_home: Path, make_engine: Callable[..., Engine]) -> None:
    engine = make_engine(repo_home)
    with pytest.raises(UsageError) as agent:
        engine.deploy("agent:bot")
    assert agent.value.code == "actor_invalid"
    engine.deploy("human:bob")
    with pytest.raises(UsageError) as same:
        make_engine(repo_home).deploy("human:bob")
    assert same.value.code == "nothing_to_deploy"
    _edit(repo_home / "checklists" / "support-triage.yaml", "roles: [support-engineer]", "roles: [nobody]")
    with pytest.raises(UsageError) as broken:
        make_engine(repo_home).deploy("human:bob")
    assert broken.value.code == "definitions_invalid"
    assert "checklists/support-triage.yaml" in broken.value.message
    with pytest.raises(NotFoundError, match="no deployment 7. Deployments are numbered 1 to 1"):
        make_engine(repo_home).deploy("human:bob", from_number=7)
    assert [d["number"] for d in make_engine(repo_home).deployments()] == [1]


def test_decisions_diff_and_impact_from_the_cli(repo_home: Path, cli: Callable[..., CLIResult]) -> None:
    first = cli("deploy", "--actor", "human:bob", "--json", home=repo_home)
    assert first.returncode == 0, first
    table = repo_home / "decisions" / "tier_routing.dmn"
    _edit(table, "<text>\"Tier 1: compliance-critical, so a BPMN process",
          "<text>\"Tier 1: compliance-critical, hence a BPMN process")
    _edit(repo_home / "decisions" / "support_triage.dmn", '<text>"P2"</text>', '<text>"P3"</text>')
    diff = cli("decisions", "diff", "1", "drafts", "--json", home=repo_home)
    assert diff.returncode == 0, diff
    data = diff.json["data"]
    assert data["old"] == "deployment 1" and data["new"] == "drafts"
    by_id = {d["decision"]: d for d in data["decisions"]}
    assert by_id["gap_classification"]["status"] == "same"
    [routing] = by_id["tier_routing"]["tables"]
    [changed] = routing["changed"]
    assert changed["rule"] == "rule_tier1_compliance" and changed["index"] == 1
    assert changed["cells"] == [{"column": "output 2 (rationale)",
                                 "old": '"Tier 1: compliance-critical, so a BPMN process with gated steps and approvals"',
                                 "new": '"Tier 1: compliance-critical, hence a BPMN process with gated steps and approvals"'}]
    assert routing["added"] == [] and routing["removed"] == []
    assert by_id["support_triage"]["status"] == "changed"
    human = cli("decisions", "diff", "1", "drafts", home=repo_home)
    assert "~ rule_tier1_compliance (#1)" in human.stdout
    assert 'output 2 (rationale): "Tier 1: compliance-critical, so a BPMN' in human.stdout
    # Deployed, the same diff is between two numbers.
    assert cli("deploy", "--actor", "human:bob", home=repo_home).returncode == 0
    again = cli("decisions", "diff", "1", "2", "--json", home=repo_home).json["data"]
    assert again["rules"] == data["rules"]
    listing = cli("deployments", "--json", home=repo_home).json["data"]
    assert [(d["number"], d["changes"]["rules"]["changed"]) for d in listing] == [(1, 0), (2, data["rules"]["changed"])]
    bad = cli("decisions", "diff", "1", "latest", "--json", home=repo_home)
    assert bad.returncode == 2 and bad.json["error"]["code"] == "usage"
    assert bad.json["error"]["message"].startswith("'latest' is neither a deployment number nor `drafts`.")
    # Impact compares the drafts with the deployed version by default.
    deployed_text = table.read_text(encoding="utf-8")
    started = cli("start", "support-triage", "--data", '{"ticket_id": "SUP-10234", "client_id": "CL-0042", '
                  '"client_tier": "gold", "summary": "Payslips are wrong"}', "--actor", BOT, home=repo_home)
    assert started.returncode == 0, started
    _edit(table, "<text>\"Tier 2: structured, moderate stakes", "<text>\"Tier 2: structured and of moderate stakes")
    impact = cli("decisions", "impact", "tier_routing", "--json", home=repo_home)
    assert impact.returncode == 0, impact
    assert impact.json["data"]["decision"] == "tier_routing" and impact.json["data"]["replayed"] == 1
    saved = repo_home.parent / "deployed-tier_routing.dmn"
    saved.write_text(deployed_text, encoding="utf-8")
    explicit = cli("decisions", "impact", "decisions/tier_routing.dmn", "--against", str(saved), "--json",
                   home=repo_home)
    assert explicit.json["data"] == impact.json["data"]


def test_impact_without_a_deployment_asks_for_against(demo_home: HomeBuilder, cli: Callable[..., CLIResult]) -> None:
    result = cli("decisions", "impact", "tier_routing", "--json", home=demo_home)
    assert result.returncode == 2
    assert result.json["error"]["message"].startswith("nothing is deployed yet")


def test_tiergate_test_reads_the_drafts_on_a_deployed_database(demo_home: HomeBuilder,
                                                                make_engine: Callable[..., Engine]) -> None:
    from tiergate.scenarios.suite import run_suite

    make_engine(demo_home).deploy("human:alice")
    path = demo_home.root / "checklists" / "demo.yaml"
    path.write_text(path.read_text(encoding="utf-8") + """\
  - id: close
    title: Close the ticket
    done_when: {type: object, required: [closed], properties: {closed: {const: true}}}
""", encoding="utf-8")
    engine = make_engine(demo_home)
    report = run_suite(engine)
    [item] = report["coverage"]["processes"]
    assert item["uncovered_steps"] == ["gather", "extra", "review", "close"]
    # New runs still start from the deployment, which has no `close` step.
    run = engine.start("demo", {"ticket_id": "T-1"}, actor="agent:bot")
    assert [s.id for s in run.steps] == ["gather", "extra", "review"]


def test_a_deployment_row_with_a_path_outside_the_home_is_never_written(demo_home: HomeBuilder,
                                                                         make_engine: Callable[..., Engine],
                                                                         tmp_path: Path) -> None:
    import sqlalchemy as sa

    from tiergate.store.tables import Deployment

    engine = make_engine(demo_home)
    engine.deploy("human:alice")
    table = Deployment.__table__  # type: ignore[attr-defined]
    with engine.db.write() as conn:
        row = conn.execute(sa.select(table.c.manifest)).scalar_one()
        digest = row["tiers/roles.yaml"]
        conn.execute(sa.update(table).values(manifest={**row, "decisions/../../../escaped.yaml": digest}))
    with pytest.raises(UsageError, match="names files outside the definition folders"):
        make_engine(demo_home).start("demo", {"ticket_id": "T-1"}, actor="agent:bot")
    assert not list(tmp_path.rglob("escaped.yaml"))
