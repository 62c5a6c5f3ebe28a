"""Event subprocesses that an event starts, without changing the process's spec for later runs.

SpiffWorkflow keeps the event subprocesses that an error, escalation, signal or message starts on
the process's start task (``trigger_specs``); when one is triggered, ``BpmnStartTask.trigger_wf``
links the start task to it for good and adds it to the run's task tree as a *triggered* child.
tiergate builds a process's spec once per definition version and shares it among that version's
runs, so that link would reach every run started afterwards: the event subprocess would start at
once, wait for its event, and the run could never end (its end waits for every task).

``install`` (done on import) replaces ``trigger_wf`` with one that makes the same triggered child
and gives the event subprocess its way to the end, but leaves the start task's outputs alone. A
triggered child stays in the tree without that link (SpiffWorkflow never removes a triggered task
when it syncs a task's children), and a run is stored as its task tree, so nothing else changes.
"""

from __future__ import annotations

from typing import Any

from SpiffWorkflow.bpmn.specs.control import BpmnStartTask
from SpiffWorkflow.util.task import TaskState


def trigger_wf(self: Any, my_task: Any, spec_name: str) -> Any:
    spec = self._wf_spec.task_specs.get(spec_name)
    if self._wf_spec.end not in spec.outputs:
        spec.connect(self._wf_spec.end)
    child = my_task._add_child(spec, TaskState.FUTURE)
    child.triggered = True
    child.task_spec._update(child)
    return child.id


def install() -> None:
    BpmnStartTask.trigger_wf = trigger_wf  # type: ignore[method-assign]


install()
