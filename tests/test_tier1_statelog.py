"""A task's change of state with ``tiergate.bpmn.statelog`` installed is SpiffWorkflow's own.

The same workflows are built and run on with SpiffWorkflow's ``Task._set_state`` and with
tiergate's: the trees as stored (and the order of their tasks' changes) are the same; with the
``spiff.task`` logger on, the records are the same, with the same details; with it off, none.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import pytest
from SpiffWorkflow.task import Task
from SpiffWorkflow.util.task import TaskState
from test_tier1_fresh import SPECS, advanced, stored

from tiergate.bpmn import statelog
from tiergate.bpmn.scripting import RestrictedScriptEngine, RestrictedWorkflow

#: Details of a record that name a moment (they differ between any two runs).
_MOMENTS = {"last_state_change", "elapsed"}


@pytest.fixture
def spiffworkflows_own() -> Iterator[None]:
    """SpiffWorkflow's ``_set_state`` for the duration of a test."""
    Task._set_state = statelog.ORIGINAL  # type: ignore[method-assign]
    try:
        yield
    finally:
        statelog.install()


def _run(spec: Any, subprocess_specs: dict[str, Any]) -> tuple[Any, Any]:
    built = RestrictedWorkflow(spec, subprocess_specs, script_engine=RestrictedScriptEngine())
    return stored(built), advanced(built)


def test_it_is_installed() -> None:
    assert Task._set_state is statelog.set_state and statelog.ORIGINAL is not statelog.set_state


@pytest.mark.parametrize("name, spec, subprocess_specs", SPECS, ids=[name for name, _, _ in SPECS])
def test_workflows_build_and_run_on_as_with_spiffworkflows_own(
        name: str, spec: Any, subprocess_specs: dict[str, Any], request: pytest.FixtureRequest) -> None:
    ours = _run(spec, subprocess_specs)
    request.getfixturevalue("spiffworkflows_own")
    assert _run(spec, subprocess_specs) == ours


def _records(caplog: pytest.LogCaptureFixture, workflow: RestrictedWorkflow) -> list[dict[str, Any]]:
    """Each ``spiff.task`` record of a run on of ``workflow``: level, message and details, ids by order."""
    caplog.clear()
    workflow.task_tree.data.update({"n": 7, "tenants": ["acme", "globex"], "ticket": "T-1"})
    for task in list(workflow.tasks.values()):
        task._set_state(task._state)  # the same state again: a DEBUG record
    advanced(workflow)
    names: dict[Any, str] = {}
    found = []
    for record in caplog.records:
        if record.name != "spiff.task":
            continue
        details = {key: value for key, value in vars(record).items()
                   if key in ("workflow_spec", "task_spec", "task_id", "task_type", "state", "parent", "data",
                              "internal_data", *_MOMENTS)}
        for key in ("task_id", "parent"):
            if details.get(key) is not None:
                details[key] = names.setdefault(details[key], f"task-{len(names)}")
        assert all(isinstance(details.pop(key), float | int) for key in _MOMENTS)
        found.append({"level": record.levelname, "message": record.getMessage(), **details})
    return found


@pytest.mark.parametrize("level", [logging.DEBUG, logging.INFO])
def test_with_its_logger_on_the_records_are_spiffworkflows(
        level: int, caplog: pytest.LogCaptureFixture, request: pytest.FixtureRequest) -> None:
    _, spec, subprocess_specs = next(s for s in SPECS if s[0] == "choice:choice")
    caplog.set_level(level, logger="spiff.task")
    ours = _records(caplog, RestrictedWorkflow(spec, subprocess_specs, script_engine=RestrictedScriptEngine()))
    assert any(r["message"] == "State changed to COMPLETED" for r in ours)
    assert any(r["message"].startswith("State set to") for r in ours) == (level == logging.DEBUG)
    assert any("data" in r for r in ours) == (level == logging.DEBUG)  # SpiffWorkflow adds data below INFO
    request.getfixturevalue("spiffworkflows_own")
    theirs = _records(caplog, RestrictedWorkflow(spec, subprocess_specs, script_engine=RestrictedScriptEngine()))
    assert ours == theirs


def test_with_its_logger_off_nothing_is_recorded_and_the_state_changes_alike(
        caplog: pytest.LogCaptureFixture) -> None:
    _, spec, subprocess_specs = next(s for s in SPECS if s[0] == "linear:linear")
    caplog.set_level(logging.WARNING, logger="spiff.task")
    workflow = RestrictedWorkflow(spec, subprocess_specs, script_engine=RestrictedScriptEngine())
    task = next(t for t in workflow.tasks.values() if t.state == TaskState.FUTURE)
    before = task.last_state_change
    task._set_state(TaskState.FUTURE)  # the same state: nothing changes
    assert task.last_state_change == before and task.state == TaskState.FUTURE
    task._set_state(TaskState.READY)
    assert task.state == TaskState.READY and task.last_state_change >= before
    assert not [r for r in caplog.records if r.name == "spiff.task"]
