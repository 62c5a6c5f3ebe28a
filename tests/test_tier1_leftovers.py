"""What a Tier 1 run leaves behind in the process, and what SpiffWorkflow still logs when asked to."""

from __future__ import annotations

import gc
import logging
from collections.abc import Callable
from pathlib import Path

import pytest

from tier1_helpers import LINEAR, tier1_home
from tiergate.bpmn.scripting import RestrictedWorkflow
from tiergate.engine import Engine


def _workflows() -> int:
    return sum(1 for o in gc.get_objects() if isinstance(o, RestrictedWorkflow))


def _run(engine: Engine) -> str:
    run = engine.start("linear", {"ticket": "T-1"}, actor="agent:a")
    engine.complete(run.id, "draft", {"note": "a first draft"}, actor="agent:a")
    assert engine.complete(run.id, "approve", {"approved": True}, actor="human:alice").status == "completed"
    return run.id


def test_a_finished_run_leaves_no_workflow_for_the_garbage_collector(
        tmp_path: Path, make_engine: Callable[..., Engine]) -> None:
    engine = make_engine(tier1_home(tmp_path / "home", {"linear": LINEAR}))
    _run(engine)  # the definition, its spec and the spec's template are built once
    gc.collect()
    before = _workflows()
    gc.disable()
    try:
        _run(engine)
        # Without a collection, a workflow still in a reference ring would still be counted here.
        assert _workflows() == before
    finally:
        gc.enable()


def test_spiffworkflow_logs_a_workflow_completed_when_its_logger_is_on(
        tmp_path: Path, make_engine: Callable[..., Engine], caplog: pytest.LogCaptureFixture) -> None:
    engine = make_engine(tier1_home(tmp_path / "home", {"linear": LINEAR}))
    _run(engine)
    caplog.set_level(logging.INFO, logger="spiff.workflow")
    _run(engine)
    records = [r for r in caplog.records if r.name == "spiff.workflow"]
    assert [r.getMessage() for r in records] == ["Initialized workflow", "Workflow completed"]
    assert {r.workflow_spec for r in records} == {"linear"} and all(r.root for r in records)  # type: ignore[attr-defined]
