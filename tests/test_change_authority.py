"""Change authority: tiers/policy.yaml, the built-in definition-change process, and deploy refused without it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Callable

import pytest
from support import REPO, CLIResult, HomeBuilder

from tiergate.change_runs import CHANGE_PROCESS
from tiergate.engine import Engine
from tiergate.errors import RefusedError, TiergateError
from tiergate.policy import policy_json_schema

ROLES = """\
roles:
  lead:
    description: Changes the definitions.
    members: [human:alice, human:bob]
  reviewer:
    description: Approves changes.
    members: [human:carol, human:bob, agent:reviewer-bot]
"""
POLICY = """\
rules:
  decisions: {changed_by: [lead], approved_by: reviewer}
  checklists: {changed_by: [lead], approved_by: reviewer}
  default: {changed_by: [lead]}
"""
ROUTING = "decisions/tier_routing.dmn"
DESCRIPTION = "<description>"


@pytest.fixture
def change_home(demo_home: HomeBuilder) -> HomeBuilder:
    demo_home.write("tiers/roles.yaml", ROLES)
    demo_home.write("tiers/policy.yaml", POLICY)
    return demo_home


def _edit(home: HomeBuilder, relative: str, old: str, new: str) -> None:
    path = home.root / relative
    text = path.read_text(encoding="utf-8")
    assert old in text, old
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


def _reword_routing(home: HomeBuilder) -> None:
    """A change of a DMN file that keeps every decision test passing."""
    _edit(home, ROUTING, DESCRIPTION, DESCRIPTION + "Reviewed. ")


def _code(call: Callable[[], object]) -> TiergateError:
    with pytest.raises(TiergateError) as caught:
        call()
    return caught.value


def test_check_reports_each_policy_problem_at_its_line(change_home: HomeBuilder,
                                                       make_engine: Callable[..., Engine]) -> None:
    change_home.write("tiers/policy.yaml", """\
        rules:
          recipes: {changed_by: [lead]}
          checklists: {changed_by: []}
        """)
    problems = [str(p) for p in make_engine(change_home).check() if p.path == "tiers/policy.yaml"]
    assert any(p.startswith("tiers/policy.yaml:2: /rules/recipes") for p in problems), problems
    assert any(p.startswith("tiers/policy.yaml:3: /rules/checklists/changed_by") for p in problems), problems
    change_home.write("tiers/policy.yaml", """\
        rules:
          checklists: {changed_by: [lead]}
          decisions: {changed_by: [lead, nobody], approved_by: ghost}
        """)
    problems = [str(p) for p in make_engine(change_home).check() if p.path == "tiers/policy.yaml"]
    assert any(p.startswith("tiers/policy.yaml:3:") and "'nobody' is not a role" in p for p in problems), problems
    assert any(p.startswith("tiers/policy.yaml:3:") and "'ghost' is not a role" in p for p in problems), problems
    assert any(p.startswith("tiers/policy.yaml:1:") and "no rule covers the policy itself" in p
               for p in problems), problems


def test_the_shipped_policy_schema_is_the_models_and_the_platform_policy_passes(
        cli: Callable[..., CLIResult], change_home: HomeBuilder) -> None:
    import yaml
    from jsonschema import Draft202012Validator

    shipped = json.loads((REPO / "src/tiergate/schemas/policy.schema.json").read_text())
    assert shipped == json.loads(json.dumps(policy_json_schema()))
    Draft202012Validator(shipped).validate(yaml.safe_load((REPO / "tiers/policy.yaml").read_text()))
    assert not Draft202012Validator(shipped).is_valid({"rules": {"recipes": {"changed_by": ["lead"]}}})
    assert json.loads(cli("schema", "policy", home=change_home).stdout) == shipped
    checked = cli("check", "--json", home=REPO)
    assert not [p for p in checked.json["data"]["problems"] if p["path"] == "tiers/policy.yaml"]


def test_a_dmn_change_without_an_approved_change_run_is_refused(change_home: HomeBuilder,
                                                                make_engine: Callable[..., Engine]) -> None:
    first = make_engine(change_home).deploy("human:alice")
    assert first["approval"] == {"kind": "bootstrap"}
    _reword_routing(change_home)
    refused = _code(lambda: make_engine(change_home).deploy("human:alice"))
    assert refused.code == "approval_required" and refused.details["approvers"] == ["reviewer"]
    assert "tiergate changes propose --actor human:alice" in refused.message
    outsider = _code(lambda: make_engine(change_home).deploy("human:carol"))
    assert outsider.code == "change_not_allowed" and outsider.details["kind"] == "decisions"
    assert [d["number"] for d in make_engine(change_home).deployments()] == [1]
    from tiergate import doorlog  # no run to log them in: each refusal is a row of `tiergate log refusals`

    assert [(r["attempt"], r["code"], r["actor"], r["problem"]) for r in doorlog.entries(make_engine(change_home))] == [
        ("deploy", "change_not_allowed", "human:carol", "decisions"),
        ("deploy", "approval_required", "human:alice", "decisions")]
    # what needs no approval is deployed directly; the drafts' policy never counts, the deployed one does
    change_home.write("tiers/policy.yaml", POLICY.replace("approved_by: reviewer}", "}"))
    assert _code(lambda: make_engine(change_home).deploy("human:alice")).code == "approval_required"
    (change_home.root / ROUTING).write_bytes((REPO / ROUTING).read_bytes())
    change_home.write("tiers/policy.yaml", POLICY)
    change_home.write("tiers/gaps.yaml", "# settings\n")
    assert make_engine(change_home).deploy("human:bob")["approval"] == {"kind": "direct"}


def test_four_eyes_the_author_and_agents_cannot_approve(change_home: HomeBuilder,
                                                        make_engine: Callable[..., Engine]) -> None:
    from tiergate.change_runs import propose

    make_engine(change_home).deploy("human:alice")
    _reword_routing(change_home)
    engine = make_engine(change_home)
    info = propose(engine, "human:bob", "Reword the routing table's description")
    assert info.process == CHANGE_PROCESS and info.tier == 1
    assert [s.id for s in info.ready_steps] == ["approve"]
    assert info.data["tests_passed"] is True and info.data["tests"]["failed"] == 0
    assert info.data["changes"]["files"]["changed"] == [ROUTING]
    assert info.data["impact"][0]["decision"] == "tier_routing" and "replayed" in info.data["impact"][0]
    refusals = {}
    for actor in ("human:bob", "agent:reviewer-bot", "human:alice"):
        with pytest.raises(RefusedError) as caught:
            engine.complete(info.id, "approve", {"approved": True}, actor=actor)
        refusals[actor] = caught.value.reason
    assert refusals == {"human:bob": "same_actor", "agent:reviewer-bot": "actor_not_allowed",
                        "human:alice": "actor_not_allowed"}
    with pytest.raises(RefusedError) as caught:   # the engine's own steps are nobody else's
        engine.complete(info.id, "deploy", {"deployment": 7}, actor="agent:reviewer-bot")
    assert caught.value.reason in ("actor_not_allowed", "not_ready")
    assert [d["number"] for d in engine.deployments()] == [1]
    logged = [e for e in engine.log(info.id) if e["event"] == "refused"]
    assert [e["actor"] for e in logged][:3] == ["human:bob", "agent:reviewer-bot", "human:alice"]
    done = engine.complete(info.id, "approve", {"approved": True, "comment": "fine"}, actor="human:carol")
    assert done.status == "completed" and done.data["deployment"] == 2
    second = engine.deployments()[-1]
    assert second["approval"] == {"kind": "change", "run": info.id, "author": "human:bob", "approved_by": "human:carol"}
    assert second["actor"] == "human:carol" and second["changes"]["files"]["changed"] == [ROUTING]


def test_a_run_keeps_its_version_and_every_routed_entry_names_its_deployment(
        change_home: HomeBuilder, make_engine: Callable[..., Engine]) -> None:
    from tiergate.change_runs import propose

    make_engine(change_home).deploy("human:alice")
    before = make_engine(change_home).start("demo", {"ticket_id": "T-1"}, actor="agent:bot")
    _edit(change_home, "checklists/demo.yaml", "Gather the facts", "Gather every fact")
    engine = make_engine(change_home)
    info = propose(engine, "human:alice", "Clearer title")
    engine.complete(info.id, "approve", {"approved": True}, actor="human:carol")
    after_engine = make_engine(change_home)
    after = after_engine.start("demo", {"ticket_id": "T-2"}, actor="agent:bot")
    assert after.definition_version != before.definition_version
    assert after_engine.status(before.id).steps[0].title == "Gather the facts"
    assert after.steps[0].title == "Gather every fact"
    routed = [e for e in after_engine.log() if e["event"] == "routed"]
    assert {e["run"]: e["detail"]["deployment"] for e in routed} == {before.id: 1, info.id: 1, after.id: 2}
    assert all(e["detail"].get("deployment") is not None for e in after_engine.log() if e["event"] == "started")


def test_failing_tests_end_the_change_and_nothing_is_deployed(change_home: HomeBuilder,
                                                               make_engine: Callable[..., Engine]) -> None:
    from tiergate.change_runs import propose

    make_engine(change_home).deploy("human:alice")
    tests = change_home.root / "decisions" / "tests" / "tier_routing.yaml"
    text = tests.read_text(encoding="utf-8")
    assert "tier: 2" in text
    tests.write_text(text.replace("tier: 2", "tier: 3", 1), encoding="utf-8")
    engine = make_engine(change_home)
    info = propose(engine, "human:alice", "A test that cannot pass")
    assert info.status == "completed" and not info.ready_steps
    assert info.data["tests_passed"] is False
    assert any(f.startswith("decisions/tests/tier_routing.yaml:") for f in info.data["tests"]["failures"])
    assert "impact" not in info.data and [d["number"] for d in engine.deployments()] == [1]


def test_the_change_process_from_the_cli_as_a_lead_walks_it(change_home: HomeBuilder,
                                                           cli: Callable[..., CLIResult]) -> None:
    assert cli("deploy", "--actor", "human:alice", home=change_home).returncode == 0
    _reword_routing(change_home)
    direct = cli("deploy", "--actor", "human:alice", "--json", home=change_home)
    assert direct.returncode == 1 and direct.json["error"]["code"] == "approval_required"
    agent = cli("changes", "propose", "--note", "x", "--actor", "agent:reviewer-bot", "--json", home=change_home)
    assert agent.returncode == 2 and agent.json["error"]["code"] == "actor_invalid"

    proposed = cli("changes", "propose", "--note", "Reword the routing description", "--actor", "human:bob",
                   home=change_home)
    assert proposed.returncode == 0, proposed.stderr
    lines = proposed.stdout.splitlines()
    assert lines[0].startswith("change run ") and lines[0].endswith(" by human:bob against deployment 1: "
                                                                    "files: 1 changed")
    run_id = lines[0].split()[2]
    assert "  tests: passed" in proposed.stdout
    assert "  impact: tier_routing: 0 of 0 logged decisions would have gone differently" in proposed.stdout
    assert f"tiergate changes approve {run_id} --actor human:NAME" in proposed.stdout

    own = cli("changes", "approve", run_id, "--actor", "human:bob", "--json", home=change_home)
    assert own.returncode == 1 and own.json["error"]["details"]["reason"] == "same_actor"
    bot = cli("changes", "approve", run_id, "--actor", "agent:reviewer-bot", "--json", home=change_home)
    assert bot.returncode == 1 and bot.json["error"]["details"]["reason"] == "actor_not_allowed"
    approved = cli("changes", "approve", run_id, "--comment", "Reads well", "--actor", "human:carol", home=change_home)
    assert approved.returncode == 0, approved.stderr
    assert "  approved by human:carol: Reads well\n  deployed as deployment 2\n" in approved.stdout

    listing = cli("deployments", "--json", home=change_home).json["data"]
    assert [(d["number"], d["approval"]["kind"]) for d in listing] == [(1, "bootstrap"), (2, "change")]
    assert listing[1]["approval"]["run"] == run_id
    shown = cli("deployments", home=change_home).stdout
    assert "human:carol" in shown and "change" in shown
    log = cli("log", "show", run_id, "--json", home=change_home).json["data"]
    assert [e["event"] for e in log if e["step"] == "deploy"] == ["step_ready", "step_completed"]
    assert next(e for e in log if e["event"] == "routed")["detail"]["deployment"] == 1

    # a second change, said no to; then a rollback to the first deployment, which needs no approval
    _edit(change_home, ROUTING, "Reviewed. ", "Reviewed twice. ")
    second = cli("changes", "propose", "--note", "Again", "--actor", "human:alice", "--json", home=change_home)
    second_id = second.json["data"]["id"]
    assert second.json["data"]["ready"] == ["approve"]
    no = cli("changes", "reject", second_id, "--comment", "Not needed", "--actor", "human:bob", "--json",
             home=change_home)
    assert no.returncode == 0 and no.json["data"]["status"] == "completed"
    assert "deployment" not in no.json["data"]["data"]
    back = cli("deploy", "--from", "1", "--actor", "human:alice", "--json", home=change_home)
    assert back.returncode == 0 and back.json["data"]["approval"] == {"kind": "rollback", "to": 1}
    resumed = cli("changes", "resume", run_id, "--json", home=change_home)
    assert resumed.returncode == 0 and resumed.json["data"]["data"]["deployment"] == 2
    demo = cli("start", "demo", "--data", '{"ticket_id": "T-9"}', "--actor", "agent:bot", "--json", home=change_home)
    other = cli("changes", "resume", demo.json["data"]["id"], "--json", home=change_home)
    assert other.returncode == 2 and other.json["error"]["code"] == "usage"


def test_the_engine_checks_run_within_their_memory_budget(change_home: HomeBuilder, make_engine: Callable[..., Engine],
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    from tiergate.change_runs import propose
    from tiergate.limits import limit

    make_engine(change_home).deploy("human:alice")
    _reword_routing(change_home)
    monkeypatch.setenv("TIERGATE_LIMIT_CHANGE_CHECK_MEGABYTES", "64")   # too little to even load tiergate
    limit.cache_clear()
    try:
        info = propose(make_engine(change_home), "human:alice", "Over budget")
    finally:
        monkeypatch.delenv("TIERGATE_LIMIT_CHANGE_CHECK_MEGABYTES")
        limit.cache_clear()
    assert info.status == "completed" and info.data["tests_passed"] is False
    assert "change_check_megabytes" in info.data["tests"]["error"]
    assert [d["number"] for d in make_engine(change_home).deployments()] == [1]


def test_an_approval_after_another_deployment_deploys_nothing(change_home: HomeBuilder,
                                                              make_engine: Callable[..., Engine]) -> None:
    from tiergate.change_runs import propose

    make_engine(change_home).deploy("human:alice")
    _reword_routing(change_home)
    engine = make_engine(change_home)
    first = propose(engine, "human:alice", "First")
    _edit(change_home, "checklists/demo.yaml", "Gather the facts", "Gather every fact")
    second = propose(engine, "human:alice", "Second, on the same deployment")
    assert engine.complete(first.id, "approve", {"approved": True}, actor="human:carol").data["deployment"] == 2
    late = engine.complete(second.id, "approve", {"approved": True}, actor="human:carol")
    assert late.status == "completed" and late.data["deployment"] is None
    assert "was made after this change was proposed against deployment 1" in late.data["deploy_error"]
    assert [d["number"] for d in engine.deployments()] == [1, 2]
    ends = [e["detail"] for e in engine.log(second.id) if e["event"] == "completed"]
    assert len(ends) == 1
