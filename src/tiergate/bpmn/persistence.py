"""A Tier 1 run's SpiffWorkflow state: stored without its spec, and kept small.

**Spec left out.** SpiffWorkflow's serializer writes the whole process spec into every state.
Here the spec comes from the run's pinned definition (parsed once per definition version and
cached), so the stored state is the task tree, the data and the subprocesses only.

**Pruning.** SpiffWorkflow keeps every task a run ever had. The tree grows with each loop
iteration: serializing, restoring and stepping all get slower, and past about 250 iterations
its depth-limited tree walk (``max_depth=1000``) stops finding tasks, so a run silently
stops. The execution log already holds the history, so ``prune`` removes what the engine can
no longer need, after every engine pass:

* Kept: the root; every task that is not finished (predicted, future, waiting, ready,
  started) or is in error; the parent of each of those (the data a task inherits, and what
  joins and boundary events look at); for a live boundary-event join, every ancestor up to
  its split (it looks the split up by walking up the tree); the cancelled arrivals at a
  parallel or inclusive join that has not fired yet, with their parents (how the join
  counts which branches arrived). The process's implicit end join is the exception: a path
  that ends while the rest goes on (a reminder) is not waited for, so its data is not
  carried into the run's final data unless it ends together with the run.
* Removed: every other finished task. A removed task's children are re-attached to its
  nearest kept ancestor, in order, so the tree stays a tree of bounded depth.
* When a join fires, the cancelled arrivals of that round are removed at once
  (``forget_join_round``): they belong to the finished round, and SpiffWorkflow would
  otherwise count them again when a loop brings the process back to the same join.
* The subprocess of a finished subprocess task is deleted.

The engine steps themselves (``advance``) run one pass at a time and prune between passes, so
even a loop of scripts that never waits for a person keeps a shallow tree. A workflow kept between
moves is pruned from the tasks touched since its last prune (``tiergate.bpmn.pruning``), with the
same result as the full pass (``prune_all``).
"""

from __future__ import annotations

import copy
import json
from typing import Any
from uuid import UUID

from SpiffWorkflow.bpmn.serializer.config import DEFAULT_CONFIG
from SpiffWorkflow.bpmn.serializer.default.workflow import BpmnWorkflowConverter, WorkflowConverter
from SpiffWorkflow.bpmn.serializer.workflow import BpmnWorkflowSerializer
from SpiffWorkflow.bpmn.specs.mixins.subworkflow_task import SubWorkflowTask
from SpiffWorkflow.bpmn.specs.mixins.unstructured_join import UnstructuredJoin
from SpiffWorkflow.bpmn.workflow import BpmnWorkflow
from SpiffWorkflow.task import Task
from SpiffWorkflow.util.task import TaskState

# The engine's passes and the pruning, re-exported from here as before the split.
from tiergate.bpmn.passes import (MAX_PASSES, StepFailure, _error_message, _failing_task,  # noqa: F401
                                  _one_pass, _ready_engine_task, _ready_in_order, advance)
from tiergate.bpmn.prunetree import (_DONE, _INT, _PARENT, _SPEC, _ancestors, _bulk,  # noqa: F401
                                     _detach, _find_task, _prune_one, forget_join_round, keeps_all,
                                     merge_branches, prune, prune_all)
from tiergate.bpmn.scripting import RestrictedScriptEngine, RestrictedWorkflow
from tiergate.jsontext import Encoded

FORMAT = 1


class SpecFreeWorkflowConverter(BpmnWorkflowConverter):
    """Like SpiffWorkflow's converter, without the spec; the spec is given back on restore."""

    def to_dict(self, workflow: BpmnWorkflow) -> dict[str, Any]:
        dct = WorkflowConverter.to_dict(self, workflow)
        dct["subprocesses"] = self.mapping_to_dict(workflow.subprocesses)
        dct["bpmn_events"] = self.registry.convert(workflow.bpmn_events)
        return dct

    def from_dict(self, dct: dict[str, Any], spec: Any = None, subprocess_specs: Any = None,
                  engine: RestrictedScriptEngine | None = None) -> RestrictedWorkflow:
        workflow = self.target_class(spec, subprocess_specs, script_engine=engine, deserializing=True)
        workflow.tasks = self.mapping_from_dict(dct["tasks"], UUID, workflow=workflow)
        workflow.task_tree = workflow.tasks.get(UUID(dct["root"]))
        self.set_default_attributes(workflow, dct)
        self.subprocesses_from_dict(dct["subprocesses"], workflow)
        workflow.bpmn_events = self.registry.restore(dct.pop("bpmn_events", []))
        return workflow


def _registry() -> Any:
    config = {cls: converter for cls, converter in DEFAULT_CONFIG.items() if cls is not BpmnWorkflow}
    config[RestrictedWorkflow] = SpecFreeWorkflowConverter
    return BpmnWorkflowSerializer.configure(config)


_REGISTRY = _registry()
#: The serializer's registry (``tiergate.bpmn.dumping`` converts tasks with it too).
REGISTRY = _REGISTRY


def dump(workflow: RestrictedWorkflow) -> dict[str, Any]:
    """The workflow's state as plain JSON, without its spec."""
    return {"format": FORMAT, **_REGISTRY.convert(workflow)}


def restore(state: dict[str, Any], spec: Any, subprocess_specs: dict[str, Any],
            engine: RestrictedScriptEngine) -> RestrictedWorkflow:
    """Rebuild a workflow from ``dump`` output, always with the given restricted engine."""
    if isinstance(state, Encoded):  # a kept dump is shared, and SpiffWorkflow would take some values as they are
        state = json.loads(state.text)
    dct = {k: v for k, v in state.items() if k != "format"}
    dct["subprocesses"] = dict(dct.get("subprocesses") or {})
    dct.pop("typename", None)
    return _REGISTRY.convert_from_dict["RestrictedWorkflow"](dct, spec=spec, subprocess_specs=subprocess_specs,
                                                            engine=engine)


def new_workflow(spec: Any, subprocess_specs: dict[str, Any], engine: RestrictedScriptEngine) -> RestrictedWorkflow:
    return RestrictedWorkflow(spec, subprocess_specs, script_engine=engine)




def is_completed(workflow: Any) -> bool:
    """``workflow.is_completed()`` (which also marks the workflow completed), from the task
    dictionary: SpiffWorkflow walks the tree from its root to the first unfinished task, which
    lists the children of every task on the way (1,000 of a multi-instance task's). A pruned
    tree holds only tasks that walk reaches, so the answer is the same."""
    if not workflow.completed:
        unfinished = TaskState.NOT_FINISHED_MASK
        if any(task._state & unfinished for task in workflow.tasks.values()):
            return False
        workflow.completed = True
    return True


def all_tasks(workflow: RestrictedWorkflow) -> list[Task]:
    found = list(workflow.tasks.values())
    for sub in workflow.subprocesses.values():
        found.extend(sub.tasks.values())
    return found




def is_subprocess_task(task: Task) -> bool:
    return isinstance(task.task_spec, SubWorkflowTask)


def connect_join_listeners(spec: Any) -> None:
    """Attach ``forget_join_round`` to every parallel/inclusive join of a (cached) spec, once."""
    for task_spec in spec.task_specs.values():
        if isinstance(task_spec, UnstructuredJoin) and not task_spec.completed_event.is_connected(_on_join):
            task_spec.completed_event.connect(_on_join)


def _on_join(workflow: Any, task: Task) -> None:
    forget_join_round(workflow, task)


def copy_state(state: dict[str, Any]) -> dict[str, Any]:
    return copy.deepcopy(state)
