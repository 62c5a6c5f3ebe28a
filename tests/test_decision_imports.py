"""A home decision that imports another DMN model pins the imported file with the run.

decisions/risk_level.dmn imports decisions/limits.dmn (a library: a business knowledge model
``cutoff``); a run started before limits.dmn changes keeps the old cutoff, a tampered pinned copy
stops the run, and `check`, `decisions diff` and `decisions impact` see the imported file.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import pytest
import sqlalchemy as sa
from tier1_helpers import bpmn, chain, flow, tier1_home, user

from tiergate.engine import Engine
from tiergate.errors import IntegrityError

NS = "https://www.omg.org/spec/DMN/20191111/MODEL/"


def limits(cutoff: str) -> str:
    return (f'<?xml version="1.0" encoding="UTF-8"?>\n<definitions xmlns="{NS}" id="lim" name="Limits" '
            f'namespace="urn:limits">\n<businessKnowledgeModel id="b_cutoff" name="cutoff"><encapsulatedLogic>'
            f'<literalExpression><text>{cutoff}</text></literalExpression></encapsulatedLogic>'
            f'</businessKnowledgeModel>\n</definitions>\n')


def risk(location: str = "limits.dmn", namespace: str = "urn:limits") -> str:
    return (f'<?xml version="1.0" encoding="UTF-8"?>\n<definitions xmlns="{NS}" id="risk" name="Risk" '
            f'namespace="urn:risk">\n'
            f'<import namespace="{namespace}" name="limits" importType="{NS}" locationURI="{location}"/>\n'
            '<inputData id="i_score" name="score"><variable name="score" typeRef="number"/></inputData>\n'
            '<decision id="risk_level" name="risk_level">'
            '<informationRequirement><requiredInput href="#i_score"/></informationRequirement>'
            '<knowledgeRequirement><requiredKnowledge href="urn:limits#b_cutoff"/></knowledgeRequirement>'
            '<literalExpression><text>if score &lt; limits.cutoff() then {level: "low", route: "fast"} '
            'else {level: "high", route: "careful"}</text></literalExpression></decision>\n</definitions>\n')


TESTS = "decision: risk_level\ncases:\n  - name: low\n    inputs: {score: 0.1}\n    expect: {level: low}\n"

PROCESS = bpmn("decide", '<bpmn:startEvent id="start"/>' + user("assess", gate={
    "type": "object", "required": ["score"], "properties": {"score": {"type": "number"}}})
    + '<bpmn:businessRuleTask id="rate" camunda:decisionRef="risk_level"/>'
    + '<bpmn:exclusiveGateway id="gw" default="f_fast"/>' + user("fast") + user("careful")
    + '<bpmn:endEvent id="end"/>' + chain("start", "assess", "rate", "gw") + flow("f_fast", "gw", "fast")
    + flow("f_careful", "gw", "careful", 'route == "careful"', deviation=True)
    + chain("fast", "end", prefix="a") + chain("careful", "end", prefix="b"))

CHECKLIST = """\
id: rated
title: Rated
steps:
  - id: assess
    title: Assess
    done_when: {type: object, required: [score], properties: {score: {type: number}}}
  - id: rate
    title: Rate
    decide: risk_level
"""


def _home(root: Path) -> Any:
    home = tier1_home(root, {"decide": PROCESS}, decisions={"risk_level": (risk(), TESTS)},
                      tier2={"rated": CHECKLIST})
    home.write("decisions/limits.dmn", limits("0.5"))
    return home


def _decided(engine: Engine, run_id: str) -> dict[str, Any]:
    return [e for e in engine.log(run_id) if e["event"] == "decision_evaluated"][-1]["detail"]["outputs"]


def test_check_accepts_the_import_and_a_library_needs_no_tests(tmp_path: Path,
                                                              make_engine: Callable[..., Engine]) -> None:
    engine = make_engine(_home(tmp_path / "home"))
    assert [str(p) for p in engine.check() if p.severity == "error"] == []
    snapshot = engine.definitions.process("decide").snapshot()
    assert snapshot["decision_imports"] == {"limits.dmn": limits("0.5")}


def test_a_tier1_run_keeps_the_imported_model_it_started_with(tmp_path: Path,
                                                             make_engine: Callable[..., Engine]) -> None:
    home = _home(tmp_path / "home")
    old = make_engine(home).start("decide", {}, actor="agent:a")
    home.write("decisions/limits.dmn", limits("0.95"))
    engine = make_engine(home)
    new = engine.start("decide", {}, actor="agent:a")
    assert new.definition_version != old.definition_version
    assert [s.id for s in engine.complete(old.id, "assess", {"score": 0.9}, actor="agent:a").ready_steps] == ["careful"]
    assert _decided(engine, old.id) == {"level": "high", "route": "careful"}
    assert [s.id for s in engine.complete(new.id, "assess", {"score": 0.9}, actor="agent:a").ready_steps] == ["fast"]
    assert _decided(engine, new.id) == {"level": "low", "route": "fast"}


def test_a_tier2_decide_step_keeps_the_imported_model_it_started_with(tmp_path: Path,
                                                                     make_engine: Callable[..., Engine]) -> None:
    home = _home(tmp_path / "home")
    old = make_engine(home).start("rated", {}, actor="agent:a")
    home.write("decisions/limits.dmn", limits("0.95"))
    engine = make_engine(home)
    new = engine.start("rated", {}, actor="agent:a")
    assert new.definition_version != old.definition_version
    engine.complete(old.id, "assess", {"score": 0.9}, actor="agent:a")
    engine.complete(new.id, "assess", {"score": 0.9}, actor="agent:a")
    assert _decided(engine, old.id) == {"level": "high", "route": "careful"}
    assert _decided(engine, new.id) == {"level": "low", "route": "fast"}


def test_a_run_survives_the_imported_file_being_deleted(tmp_path: Path,
                                                       make_engine: Callable[..., Engine]) -> None:
    home = _home(tmp_path / "home")
    run = make_engine(home).start("decide", {}, actor="agent:a")
    (home.root / "decisions" / "limits.dmn").unlink()
    engine = make_engine(home)
    engine.complete(run.id, "assess", {"score": 0.1}, actor="agent:a")
    assert _decided(engine, run.id) == {"level": "low", "route": "fast"}


def test_a_tampered_imported_file_in_the_snapshot_stops_the_run(tmp_path: Path,
                                                               make_engine: Callable[..., Engine]) -> None:
    from tiergate.store.tables import Definition

    home = _home(tmp_path / "home")
    engine = make_engine(home)
    run = engine.start("decide", {}, actor="agent:a")
    table = Definition.__table__  # type: ignore[attr-defined]
    with engine.db.write() as conn:
        body = conn.execute(sa.select(table.c.body).where(table.c.version == run.definition_version)).scalar_one()
        body["decision_imports"]["limits.dmn"] = limits("0.99")
        conn.execute(table.update().where(table.c.version == run.definition_version).values(body=body))
    fresh = make_engine(home)
    with pytest.raises(IntegrityError) as err:
        fresh.complete(run.id, "assess", {"score": 0.9}, actor="agent:a")
    assert err.value.code == "definition_tampered"
    assert [e for e in fresh.log(run.id) if e["event"] == "decision_evaluated"] == []
    assert fresh.verify_log()["definitions_tampered"] == [{"version": run.definition_version, "process": "decide"}]


@pytest.mark.parametrize("location, namespace, expected", [
    ("elsewhere.dmn", "urn:nowhere", "no .dmn file in decisions has the namespace 'urn:nowhere'"),
    ("../outside/limits.dmn", "urn:limits", "locationURI '../outside/limits.dmn' points outside"),
], ids=["unresolved", "outside-the-home"])
def test_check_reports_a_bad_import_with_its_line(tmp_path: Path, make_engine: Callable[..., Engine],
                                                  location: str, namespace: str, expected: str) -> None:
    home = _home(tmp_path / "home")
    home.write("decisions/risk_level.dmn", risk(location, namespace))
    problems = [p for p in make_engine(home).check() if p.path == "decisions/risk_level.dmn"]
    assert len(problems) == 1 and problems[0].line == 3 and expected in problems[0].message, problems


def test_check_refuses_an_imported_file_that_is_a_symlink(tmp_path: Path,
                                                         make_engine: Callable[..., Engine]) -> None:
    home = _home(tmp_path / "home")
    outside = tmp_path / "outside.dmn"
    outside.write_text(limits("0.5"))
    (home.root / "decisions" / "limits.dmn").unlink()
    (home.root / "decisions" / "limits.dmn").symlink_to(outside)
    problems = [p for p in make_engine(home).check() if p.path == "decisions/risk_level.dmn"]
    assert len(problems) == 1 and "has the namespace 'urn:limits'" in problems[0].message


def test_a_changed_imported_file_changes_its_importer_in_diffs(tmp_path: Path, make_engine: Callable[..., Engine],
                                                              cli: Any) -> None:
    home = _home(tmp_path / "home")
    engine = make_engine(home)
    first = engine.deploy("human:alice")
    assert "decisions/limits.dmn" in first["changes"]["files"]["added"]
    home.write("decisions/limits.dmn", limits("0.95"))
    diff = {d["decision"]: d for d in engine.decision_diff("1", "drafts")["decisions"]}
    assert diff["risk_level"]["status"] == "changed" and diff["risk_level"]["imports"] == ["limits.dmn"]
    assert diff["limits"]["status"] == "same rules"
    second = make_engine(home).deploy("human:alice")
    changed = {d["decision"]: d for d in second["changes"]["decisions"]}
    assert changed["risk_level"]["imports"] == ["limits.dmn"]
    shown = cli("decisions", "diff", "1", "2", home=home)
    assert shown.returncode == 0 and "imported models changed: limits.dmn" in shown.stdout, shown
    # impact replays against the deployed importer with the deployed library, not the draft
    run = engine.start("decide", {}, actor="agent:a")
    engine.complete(run.id, "assess", {"score": 0.9}, actor="agent:a")
    home.write("decisions/limits.dmn", limits("0.5"))
    report = make_engine(home).decision_impact("risk_level")
    assert report["replayed"] == 1 and report["changed"] == 1
    assert report["examples"][0]["old"] == {"level": "low", "route": "fast"}
    assert report["examples"][0]["new"] == {"level": "high", "route": "careful"}


def test_a_library_file_is_diffed_on_its_own_too(tmp_path: Path, make_engine: Callable[..., Engine]) -> None:
    from tiergate.decision_diff import diff_decisions

    old = {"risk_level": risk().encode(), "limits": limits("0.5").encode()}
    new = {"risk_level": risk().encode(), "limits": limits("0.6").encode()}
    diff = {d["decision"]: d for d in diff_decisions(old, new)}
    assert diff["risk_level"]["status"] == "changed" and diff["risk_level"]["errors"] == []
    assert diff_decisions(old, dict(old))[0]["status"] == "same"
