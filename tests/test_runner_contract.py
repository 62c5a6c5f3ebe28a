"""The runner contract (tiergate/runners/base.py), held against every step-based runner.

Each tier that has steps supplies a ``ContractCase``: a home, a process, start data, a script
of good completions to the end, bad evidence for the first step, and an actor one step
refuses. The same tests then run against it through the Engine, on SQLite and PostgreSQL.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import pytest
import sqlalchemy as sa

from support import DEMO, HomeBuilder
from tiergate.engine import Engine
from tiergate.errors import GateFailedError, RefusedError


@dataclass
class ContractCase:
    name: str
    tier: int
    make_home: Callable[[Path], Path]
    process: str
    data: dict[str, Any]
    script: list[tuple[str, dict[str, Any], str]]  # (step, evidence, actor) to the end of the run
    bad_evidence: dict[str, Any]
    refused: tuple[int, str]  # (index in script, an actor that step must refuse)
    extra: dict[str, Any] = field(default_factory=dict)


def _demo_home(root: Path) -> Path:
    builder = HomeBuilder(root / "home")
    builder.checklist("demo", DEMO.replace("    optional: true\n", ""))
    return builder.root


def _bpmn_home(root: Path) -> Path:
    from tier1_helpers import LINEAR, tier1_home

    return tier1_home(root / "home", {"linear": LINEAR}).root


CASES = [
    ContractCase(
        name="tier1-bpmn", tier=1, make_home=_bpmn_home, process="linear", data={"ticket": "T-1"},
        script=[("draft", {"note": "Change the overtime rate"}, "agent:drafter"),
                ("approve", {"approved": True}, "human:alice")],
        bad_evidence={"note": "x"}, refused=(1, "human:mallory"),
    ),
    ContractCase(
        name="tier2-checklist", tier=2, make_home=_demo_home, process="demo", data={"ticket_id": "T-1"},
        script=[("gather", {"summary": "Payslip totals are off by one cent", "severity": "S2"}, "agent:bot"),
                ("extra", {"note": "checked the rounding rule"}, "agent:bot"),
                ("review", {"approved": True}, "human:alice")],
        bad_evidence={"summary": "short"}, refused=(2, "human:mallory"),
    ),
]


@pytest.fixture(params=CASES, ids=[c.name for c in CASES])
def case(request: pytest.FixtureRequest) -> ContractCase:
    return request.param


@pytest.fixture
def contract_engine(case: ContractCase, tmp_path: Path, make_engine: Callable[..., Engine]) -> Engine:
    return make_engine(case.make_home(tmp_path))


def _run_row(engine: Engine, run_id: str) -> dict[str, Any]:
    with engine.db.read() as conn:
        return dict(conn.execute(sa.text("SELECT state, status, version FROM runs WHERE id = :i"),
                                 {"i": run_id}).one()._mapping)


def test_start_routes_and_readies_the_first_step(case: ContractCase, contract_engine: Engine) -> None:
    run = contract_engine.start(case.process, case.data, actor=case.script[0][2])
    assert run.tier == case.tier and run.status == "active"
    assert case.script[0][0] in [s.id for s in run.ready_steps]
    events = [e["event"] for e in contract_engine.log(run.id)]
    assert events[:2] == ["routed", "started"] and "step_ready" in events
    assert all(s.state in {"done", "ready", "locked", "skipped"} for s in run.steps)


def test_bad_evidence_fails_the_gate_and_changes_nothing(case: ContractCase, contract_engine: Engine) -> None:
    run = contract_engine.start(case.process, case.data, actor=case.script[0][2])
    before = _run_row(contract_engine, run.id)
    with pytest.raises(GateFailedError) as err:
        contract_engine.complete(run.id, case.script[0][0], case.bad_evidence, actor=case.script[0][2])
    assert err.value.details["errors"] and all(e["pointer"].startswith("/") for e in err.value.details["errors"])
    assert _run_row(contract_engine, run.id) == before
    assert contract_engine.log(run.id)[-1]["event"] == "gate_failed"


def test_unknown_step_and_wrong_actor_are_refused(case: ContractCase, contract_engine: Engine) -> None:
    run = contract_engine.start(case.process, case.data, actor=case.script[0][2])
    before = _run_row(contract_engine, run.id)
    with pytest.raises(RefusedError) as err:
        contract_engine.complete(run.id, "no-such-step", {}, actor=case.script[0][2])
    assert err.value.reason == "unknown_step"
    refused_at, refused_actor = case.refused
    step, evidence, _ = case.script[refused_at]
    for earlier_step, earlier_evidence, earlier_actor in case.script[:refused_at]:
        contract_engine.complete(run.id, earlier_step, earlier_evidence, actor=earlier_actor)
        before = _run_row(contract_engine, run.id)
    with pytest.raises(RefusedError) as err:
        contract_engine.complete(run.id, step, evidence, actor=refused_actor)
    assert err.value.reason == "actor_not_allowed"
    assert _run_row(contract_engine, run.id) == before
    assert [e["event"] for e in contract_engine.log(run.id)][-1] == "refused"


def test_script_runs_to_completion_and_the_log_verifies(case: ContractCase, contract_engine: Engine) -> None:
    run = contract_engine.start(case.process, case.data, actor=case.script[0][2])
    for step, evidence, actor in case.script:
        info = contract_engine.complete(run.id, step, evidence, actor=actor)
    assert info.status == "completed" and info.ended_at is not None
    completed = [e["step"] for e in contract_engine.log(run.id)
                 if e["event"] == "step_completed" and e["actor"] != "system:tiergate"]
    assert completed == [step for step, _, _ in case.script]
    assert contract_engine.log(run.id)[-1]["event"] == "completed"
    assert contract_engine.verify_log()["ok"] is True


def test_cancel_ends_the_run(case: ContractCase, contract_engine: Engine) -> None:
    run = contract_engine.start(case.process, case.data, actor=case.script[0][2])
    assert contract_engine.cancel(run.id, "no longer needed", actor="human:alice").status == "cancelled"
    with pytest.raises(RefusedError) as err:
        contract_engine.complete(run.id, case.script[0][0], case.script[0][1], actor=case.script[0][2])
    assert err.value.reason == "run_not_active"
