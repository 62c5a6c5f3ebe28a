"""Issue 12, "the rules hold": canonical actor ids, pinned snapshots re-hashed, retry rules,
plain tasks, other expression languages named, and routing to a tier without a definition."""

from __future__ import annotations

from typing import Any, Callable

import pytest
import sqlalchemy as sa

from support import DEMO, ROLES, HomeBuilder
from tiergate.actors import canonical_actor, same_actor
from tiergate.engine import Engine
from tiergate.errors import IntegrityError, RefusedError, UsageError

GATHER = {"summary": "Payslips are wrong", "severity": "S2"}


@pytest.mark.parametrize("spelling", ["human:alice", "human:Alice", "HUMAN:ALICE", "human:ａｌｉｃｅ", " human:alice "])
def test_actor_spellings_have_one_canonical_form(spelling: str) -> None:
    assert canonical_actor(spelling) == "human:alice"
    assert same_actor(spelling, "human:alice")


@pytest.mark.parametrize("spelling", ["human:alice.", "human:.alice", "human:a..lice", "human:al--ice", "human:ǅ"])
def test_actor_spellings_that_are_not_one_form_are_refused(spelling: str) -> None:
    with pytest.raises(UsageError) as err:
        canonical_actor(spelling)
    assert err.value.code == "actor_invalid"


@pytest.mark.parametrize("second", ["human:alice", "human:Alice", "human:ALICE"])
def test_four_eyes_compares_people_not_spellings(engine: Engine, second: str) -> None:
    run = engine.start("demo", {"ticket_id": "T-1"}, actor="human:alice")
    engine.complete(run.id, "gather", GATHER, actor="human:alice")
    engine.skip(run.id, "extra", "not needed", actor="human:alice")
    with pytest.raises(RefusedError) as err:
        engine.complete(run.id, "review", {"approved": True}, actor=second)
    assert err.value.reason == "same_actor"
    with pytest.raises(UsageError):
        engine.complete(run.id, "review", {"approved": True}, actor="human:alice.")
    assert engine.status(run.id).steps[2].state == "ready"
    done = engine.complete(run.id, "review", {"approved": True}, actor="human:Bob")
    assert done.status == "completed" and done.steps[2].actor == "human:bob"


def test_roles_are_matched_case_folded_and_colliding_members_are_refused(home: HomeBuilder,
                                                                         make_engine: Callable[..., Engine]) -> None:
    home.checklist("demo", DEMO)
    home.write("tiers/roles.yaml", ROLES.replace("human:bob]", "human:Bob]"))
    engine = make_engine(home)
    assert engine.check() == [] and engine.definitions.roles.roles["lead"].members == ["human:alice", "human:bob"]
    home.write("tiers/roles.yaml", ROLES.replace("human:carol,", "human:carol, human:Alice,"))
    problems = [str(p) for p in engine.check()]
    assert problems == ["tiers/roles.yaml:7: 'human:Alice' and 'human:alice' (at /roles/lead/members/0) are the "
                        "same actor, human:alice: actor ids are compared case-folded and NFKC-normalised. Write "
                        "every member one way, as human:alice."]


def _tamper(engine: Engine, version: str, change: Callable[[dict[str, Any]], None]) -> None:
    from tiergate.store.tables import Definition

    table = Definition.__table__  # type: ignore[attr-defined]
    with engine.db.write() as conn:
        body = conn.execute(sa.select(table.c.body).where(table.c.version == version)).scalar_one()
        change(body)
        conn.execute(table.update().where(table.c.version == version).values(body=body))


def test_an_edited_snapshot_stops_the_run_and_fails_log_verify(engine: Engine, make_engine: Callable[..., Engine],
                                                               demo_home: HomeBuilder, cli: Any) -> None:
    run = engine.start("demo", {"ticket_id": "T-1"}, actor="human:alice")
    assert engine.verify_log()["ok"] is True

    def drop_four_eyes_and_gate(body: dict[str, Any]) -> None:
        text = str(body)
        assert "distinct_from" in text
        steps = body["checklist"]["steps"]
        steps[2].pop("distinct_from", None)
        steps[0]["done_when"] = {"type": "object"}

    _tamper(engine, run.definition_version, drop_four_eyes_and_gate)
    fresh = make_engine(demo_home)
    for attempt in (lambda: fresh.complete(run.id, "gather", {}, actor="human:alice"), lambda: fresh.status(run.id)):
        with pytest.raises(IntegrityError) as err:
            attempt()
        assert err.value.code == "definition_tampered"
    assert len(fresh.log(run.id)) == 3  # nothing was recorded
    verified = fresh.verify_log()
    assert verified["ok"] is False and verified["broken"] is None
    assert verified["definitions_tampered"] == [{"version": run.definition_version, "process": "demo"}]
    answer = cli("log", "verify", "--json", home=demo_home)
    assert answer.returncode == 1 and answer.json["error"]["code"] == "definition_tampered"


def test_every_shipped_definition_survives_its_snapshot(repo_home: Any, make_engine: Callable[..., Engine]) -> None:
    engine = make_engine(repo_home)
    for process in engine.definitions.catalog.processes:  # type: ignore[union-attr]
        route = engine.router().route(process.id)
        runner, definition = engine._runner_and_definition(route)
        with engine.db.write() as conn:
            from tiergate.store import runs as store

            store.save_definition(conn, definition.version, process.id, runner.kind, definition.source,
                                  definition.snapshot(), engine.clock())
        with engine.db.read() as conn:
            assert store.load_definition(conn, definition.version) is not None, process.id


# --- retry of a failed Tier 1 run ---------------------------------------------------------------

def _failing_payment(process_props: str = "") -> str:
    from tier1_helpers import bpmn, chain, user

    return bpmn("payment", (
        '<bpmn:startEvent id="start"/>'
        + user("enter", gate={"type": "object", "required": ["amount"], "properties": {"amount": {"maximum": 100}}})
        + '<bpmn:scriptTask id="compute"><bpmn:script>share = amount / parts</bpmn:script></bpmn:scriptTask>'
        + user("review", actors="human") + '<bpmn:endEvent id="end"/>'
        + chain("start", "enter", "compute", "review", "end")), lanes={"lead": ["review"]},
        process_props=process_props)


@pytest.mark.parametrize("with_roles", [False, True])
def test_retry_needs_the_role_and_never_replaces_gated_evidence(tmp_path: Any, make_engine: Callable[..., Engine],
                                                                with_roles: bool) -> None:
    from tier1_helpers import props, tier1_home

    xml = _failing_payment(props(retry_roles="reviewer") if with_roles else "")
    engine = make_engine(tier1_home(tmp_path / "home", {"payment": xml}))
    assert [p for p in engine.check() if p.severity == "error"] == []
    run = engine.start("payment", {"parts": 0}, actor="agent:a")
    assert engine.complete(run.id, "enter", {"amount": 90}, actor="agent:a").status == "failed"
    allowed, other = ("human:carol", "human:alice") if with_roles else ("human:alice", "human:carol")
    for actor, data, reason in [("agent:a", {"parts": 1}, "actor_not_allowed"),
                                (other, {"parts": 1}, "actor_not_allowed"),
                                (allowed, {"amount": 10 ** 9, "parts": 1}, "data_conflict"),
                                (allowed, {"parts": 1, "approved": True}, "data_not_read")]:
        with pytest.raises(RefusedError) as err:
            engine.retry(run.id, "compute", data, actor=actor)
        assert err.value.reason == reason, (actor, data)
    assert engine.status(run.id).status == "failed"
    assert [e["detail"]["reason"] for e in engine.log(run.id) if e["event"] == "refused"] == [
        "actor_not_allowed", "actor_not_allowed", "data_conflict", "data_not_read"]
    again = engine.retry(run.id, "compute", {"parts": 3}, actor=allowed.upper())
    assert again.status == "active" and [s.id for s in again.ready_steps] == ["review"]
    assert again.data == {"parts": 3, "amount": 90, "share": 30.0}
    assert engine.complete(run.id, "review", {}, actor="human:bob").status == "completed"


# --- Tier 1 definitions ---------------------------------------------------------------------

def test_a_plain_task_completes_by_itself(tmp_path: Any, make_engine: Callable[..., Engine]) -> None:
    from tier1_helpers import bpmn, chain, tier1_home, user

    xml = bpmn("plain", '<bpmn:startEvent id="start"/>' + user("first") + '<bpmn:task id="note" name="Note it"/>'
               + user("second") + '<bpmn:endEvent id="end"/>' + chain("start", "first", "note", "second", "end"))
    engine = make_engine(tier1_home(tmp_path / "home", {"plain": xml}))
    warnings = [p.message for p in engine.check()]
    assert any("note" in w and "completes by itself" in w for w in warnings), warnings
    run = engine.start("plain", {}, actor="agent:a")
    assert [s.id for s in engine.complete(run.id, "first", {}, actor="agent:a").ready_steps] == ["second"]
    assert engine.complete(run.id, "second", {}, actor="agent:a").status == "completed"


@pytest.mark.parametrize("condition, language", [("${amount > 100}", "a JUEL expression"),
                                                 ("#{approved}", "a JUEL expression")])
def test_a_condition_in_another_language_is_named(tmp_path: Any, make_engine: Callable[..., Engine],
                                                   condition: str, language: str) -> None:
    from tier1_helpers import bpmn, chain, flow, tier1_home, user

    xml = bpmn("gw", '<bpmn:startEvent id="start"/>' + user("enter") + '<bpmn:exclusiveGateway id="split" '
               'default="f_low"/>' + user("high") + user("low") + '<bpmn:endEvent id="end"/>'
               + chain("start", "enter", "split") + flow("f_high", "split", "high", condition)
               + flow("f_low", "split", "low") + chain("high", "end", prefix="a") + chain("low", "end", prefix="b"))
    engine = make_engine(tier1_home(tmp_path / "home", {"gw": xml}))
    errors = [p for p in engine.check() if p.severity == "error"]
    assert len(errors) == 1 and errors[0].message.startswith(f"f_high: condition: '{condition}' is {language}")
    assert "syntax error" not in errors[0].message


def test_a_feel_condition_is_evaluated_by_the_feel_engine(tmp_path: Any, make_engine: Callable[..., Engine]) -> None:
    from tier1_helpers import bpmn, chain, flow, tier1_home, user

    xml = bpmn("gw", '<bpmn:startEvent id="start"/>' + user("enter") + '<bpmn:exclusiveGateway id="split" '
               'default="f_low"/>' + user("high") + user("low") + '<bpmn:endEvent id="end"/>'
               + chain("start", "enter", "split") + flow("f_high", "split", "high", "= amount > 100")
               + flow("f_low", "split", "low") + chain("high", "end", prefix="a") + chain("low", "end", prefix="b"))
    engine = make_engine(tier1_home(tmp_path / "home", {"gw": xml}))
    assert [p for p in engine.check() if p.severity == "error"] == []
    run = engine.start("gw", {}, actor="agent:a")
    assert [s.id for s in engine.complete(run.id, "enter", {"amount": 150}, actor="agent:a").ready_steps] == ["high"]


@pytest.mark.parametrize("kind", ["preScript", "postScript"])
def test_spiff_pre_and_post_scripts_are_checked_like_scripts_with_element_and_line(
        tmp_path: Any, make_engine: Callable[..., Engine], kind: str) -> None:
    from tier1_helpers import bpmn, chain, tier1_home

    def scripted(script: str, owner: str = "userTask") -> str:
        task = (f'<bpmn:{owner} id="enter" name="Enter">\n<bpmn:extensionElements>\n'
                f'<spiffworkflow:{kind}>{script}</spiffworkflow:{kind}>\n'
                '<camunda:properties><camunda:property name="gate" value="{&quot;type&quot;: &quot;object&quot;}"/>'
                f'</camunda:properties></bpmn:extensionElements></bpmn:{owner}>')
        return bpmn("scripted", '<bpmn:startEvent id="start"/>\n' + task + '<bpmn:endEvent id="end"/>'
                    + chain("start", "enter", "end"))

    def errors_of(xml: str, name: str) -> list[Any]:
        engine = make_engine(tier1_home(tmp_path / name, {"scripted": xml}))
        return [p for p in engine.check() if p.severity == "error"]

    assert errors_of(scripted("approved = True"), "ok") == []
    xml = scripted("import os")
    line = next(n for n, text in enumerate(xml.splitlines(), 1) if kind in text)
    [error] = errors_of(xml, "import")
    assert error.line == line and error.message.startswith(f"enter: spiffworkflow:{kind}: ")
    xml = scripted("approved = True", owner="intermediateThrowEvent")
    [error] = errors_of(xml, "event")
    assert error.line == line and error.message.startswith(
        f"enter: spiffworkflow:{kind} runs only on tasks, not on this intermediateThrowEvent")


# --- routing to a tier without a definition -----------------------------------------------------

def _emergency_rule(process: str = "-") -> str:
    cells = [process, "false", "false", "-", "true", "-", "-", "-", "true"]
    inputs = "".join(f'<inputEntry id="r_emergency_{n}"><text>{c}</text></inputEntry>' for n, c in enumerate(cells))
    return (f'<rule id="rule_raise_emergency_run">{inputs}<outputEntry id="r_emergency_tier"><text>1</text>'
            '</outputEntry><outputEntry id="r_emergency_why"><text>"Raised: emergency"</text></outputEntry></rule>\n')


def _with_emergency_rule(repo_home: Any, process: str = "-") -> str:
    path = repo_home / "decisions" / "tier_routing.dmn"
    text = path.read_text(encoding="utf-8")
    anchor = '<rule id="rule_tier1_compliance">'
    return text.replace(anchor, _emergency_rule(process) + anchor)


def test_check_fails_when_start_data_can_route_a_process_to_a_missing_tier(repo_home: Any,
                                                                           make_engine: Callable[..., Engine],
                                                                           cli: Any) -> None:
    engine = make_engine(repo_home)
    assert [p for p in engine.check() if p.severity == "error"] == []
    original = (repo_home / "decisions" / "tier_routing.dmn").read_text(encoding="utf-8")
    (repo_home / "decisions" / "tier_routing.dmn").write_text(_with_emergency_rule(repo_home), encoding="utf-8")
    errors = [str(p) for p in engine.check() if p.severity == "error"]
    raised = ["support-triage", "defect-capture", "documentation-generation", "standard-data-import"]
    assert [e.split("'")[1] for e in errors] == raised
    assert errors[0].startswith("tiers/catalog.yaml:")
    assert ("'support-triage' is routed to tier 1 by rule rule_raise_emergency_run of decisions/tier_routing.dmn "
            'for a run whose start data has {"emergency": true}, but processes/support-triage.bpmn does not exist, '
            "so such a run can never start.") in errors[0]
    # An ordinary run of those processes still starts; the emergency one is refused, naming the rule.
    assert engine.route("support-triage")[0].tier == 2
    with pytest.raises(RefusedError) as err:
        engine.start("support-triage", {"ticket_id": "SUP-1", "client_id": "CL-1", "client_tier": "gold",
                                        "summary": "Payslips are wrong", "emergency": True}, actor="agent:bot")
    assert err.value.reason == "tier_definition_missing"
    # `decisions impact` says so for the changed table.
    new = repo_home / "tier_routing.new.dmn"
    new.write_text((repo_home / "decisions" / "tier_routing.dmn").read_text(encoding="utf-8"), encoding="utf-8")
    (repo_home / "decisions" / "tier_routing.dmn").write_text(original, encoding="utf-8")
    (repo_home / "tier_routing.old.dmn").write_text(original, encoding="utf-8")
    report = engine.decision_impact(new, repo_home / "tier_routing.old.dmn")
    assert [(r["process"], r["tier"], r["data"], r["missing"]) for r in report["unroutable"]][0] == (
        "support-triage", 1, {"emergency": True}, "processes/support-triage.bpmn")
    assert len(report["unroutable"]) == 4 and report["catalog"] == []


def test_retry_roles_must_be_roles(tmp_path: Any, make_engine: Callable[..., Engine]) -> None:
    from tier1_helpers import props, tier1_home

    engine = make_engine(tier1_home(tmp_path / "home", {"payment": _failing_payment(props(retry_roles="nobody"))}))
    errors = [p.message for p in engine.check() if p.severity == "error"]
    assert errors == ["payment: retry_roles names nobody, which is not a role in tiers/roles.yaml, so nobody of it "
                      "could retry a failed run."]
