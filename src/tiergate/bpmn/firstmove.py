"""A new run's first engine passes, from a template made once per process spec.

A run's start (``tiergate.runners.bpmn.BpmnRunner.start``) makes the workflow (``tiergate.bpmn.fresh``),
sets the start data on its root, and lets the engine run until only people's tasks are left
(``Move.passes``): for a process that starts with a plain start event and a user task, that is
SpiffWorkflow running its ``Start`` task and the start event, each completion readying the next
task, which inherits its parent's data, and a prune after each pass. When those passes evaluate
nothing (no condition, script, decision, timer, message, data input or output, multi-instance),
nothing in them depends on the run: the tree they leave is the same for every run but for its
ids, times and data. So they are run once per spec, on probe data, and the tree they leave is
kept as a template; a new run's first move copies it (``fresh.copy_template``: new ids, times
moved to now in the same order) and gives each task the data the passes would have given it:

* the root: a deep copy of the start data (what ``Move.create`` sets);
* a task that inherited it (``Task._inherit_data``, SpiffWorkflow's ``DeepMerge`` into an empty
  dict): a new dict of the root's values, its lists and dicts copied one level deep, their items
  shared with the root's (as ``DeepMerge`` shares them);
* any other task: a copy of the template's (an empty dict).

The rest of the move (ready steps, records, timers, messages, the dump, the data view, the log
entries) is done on the copy as on any workflow. A spec is templated only if two probe runs with
different data leave trees that the template gives exactly (states, specs, links, data and
how it is shared, internal data, flags, the workflow's attributes), every task whose spec ran or
became ready is of a kind that reads no data by itself, the passes logged nothing, and neither
SpiffWorkflow's loggers nor a path trace are on when a run starts; any other spec (or moment)
runs its passes. ``tests/test_tier1_firstmove.py`` compares whole starts both ways.
"""

from __future__ import annotations

import logging
from contextvars import ContextVar
from copy import deepcopy
from dataclasses import dataclass
from typing import Any, Callable

from SpiffWorkflow.bpmn.specs.mixins.multiinstance_task import LoopTask, MultiInstanceTask
from SpiffWorkflow.bpmn.specs.mixins.subworkflow_task import SubWorkflowTask
from SpiffWorkflow.task import Task
from SpiffWorkflow.util.task import TaskState

from tiergate.bpmn import firstdump, fresh

#: Turned off by the tests that compare a templated start with the engine's own passes.
ENABLED: ContextVar[bool] = ContextVar("tiergate_first_move_template", default=True)

_ATTRIBUTE = "_tiergate_first_move"
_LOGGERS = (logging.getLogger("spiff.task"), logging.getLogger("spiff.workflow"), logging.getLogger("spiff.data"))
#: Two probe runs' start data: nested values, to see which tasks share what with the root.
PROBES = ({"tiergate_probe": [{"a": 1}, [2]], "nested": {"b": {"c": "d"}}, "text": "x", "number": 1.5},
          {"other": {"e": [3, {"f": None}]}, "flag": True, "items": ["g"]})
_RAN_OR_READY = TaskState.COMPLETED | TaskState.READY
_NOT_PLAIN = TaskState.WAITING | TaskState.STARTED | TaskState.ERROR


def usable() -> bool:
    """Whether a start may take a template now: not turned off, and SpiffWorkflow's loggers off (it logs at INFO
    and DEBUG only; the records are written by the passes themselves)."""
    return ENABLED.get() and not any(log.isEnabledFor(logging.INFO) for log in _LOGGERS)


#: A probe's first passes (``Move.probe_passes``): given start data, the new workflow after them, the elements
#: they passed and the specs of the tasks they ran; None if they evaluated, logged or failed anything.
Passes = Callable[[dict[str, Any]], "tuple[Any, set[str], list[Any]] | None"]


@dataclass(frozen=True)
class First:
    """A spec's first move: the template of the tree its passes leave, and the shape of its dump (None: a copy
    is dumped the usual way)."""

    template: fresh.Template
    shape: firstdump.Shape | None


def template_of(spec: Any, subprocess_specs: dict[str, Any], passes: Passes) -> First | None:
    """The spec's first move (made on first use), or None."""
    kept = spec.__dict__.get(_ATTRIBUTE)
    if kept is not None and kept[0] is spec:  # (a copied spec carries its original's: not used)
        return kept[1]  # type: ignore[no-any-return]
    template = _build(passes)
    first = None
    if template is not None:
        copies = [fresh.copy_template(template, spec, subprocess_specs, fresh.Probe(), deepcopy(probe))
                  for probe in PROBES]
        first = First(template, firstdump.shape_of(template, copies))
    spec.__dict__[_ATTRIBUTE] = (spec, first)  # two threads may both build one: either will do
    return first


def _build(passes: Passes) -> fresh.Template | None:
    made = [passes(deepcopy(probe)) for probe in PROBES]
    if any(one is None for one in made):
        return None
    (first, passed, ran), (second, passed_again, ran_again) = made  # type: ignore[misc]
    if passed_again != passed or any(_reads_data(spec) for spec in (*ran, *ran_again)):
        return None
    template = _template(first, passed)
    if template is None:
        return None
    copied = fresh.copy_template(template, first.spec, first.subprocess_specs, fresh.Probe(), deepcopy(PROBES[1]))
    if not _same(copied, second) or _template(second, passed) is None:
        return None
    return template


def _template(workflow: Any, passed: set[str]) -> fresh.Template | None:
    """The template of a probe's workflow after its first passes, or None if it is not plainly that."""
    tasks = tuple(workflow.tasks.values())
    if workflow.subprocesses or workflow.bpmn_events or workflow.correlations or workflow.event_manager.tasks \
            or workflow.completed or not tasks or workflow.task_tree is not tasks[0] or workflow.data:
        return None
    root = workflow.task_tree.data
    inherits = []
    for task in tasks:
        if set(vars(task)) != fresh.TASK_FIELDS or type(task) is not Task or task.workflow is not workflow \
                or task._state & _NOT_PLAIN:
            return None
        if task._state & _RAN_OR_READY and _reads_data(task.task_spec):
            return None
        if task is tasks[0]:
            inherits.append(fresh.ROOT)
        elif task.data == root and task.data is not root and _shares_as_inherited(task.data, root):
            inherits.append(fresh.INHERITED)
        elif not task.data:
            inherits.append(fresh.OWN)
        else:
            return None
    index = {task.id: i for i, task in enumerate(tasks)}
    if any((task._parent is not None and task._parent not in index) or any(c not in index for c in task._children)
           for task in tasks) or (workflow.last_task is not None and workflow.last_task.id not in index):
        return None
    links = tuple((None if task._parent is None else index[task._parent], tuple(index[c] for c in task._children))
                  for task in tasks)
    return fresh.Template(spec=workflow.spec, tasks=tasks, root=workflow.task_tree.id, data={}, links=links,
                          inherits=tuple(inherits), stamp=max(task.last_state_change for task in tasks),
                          passed=frozenset(passed),
                          last_task=None if workflow.last_task is None else index[workflow.last_task.id])


def _reads_data(spec: Any) -> bool:
    """Whether a task of ``spec`` reads or writes the run's data by itself (not the same tree for every run)."""
    return (isinstance(spec, (MultiInstanceTask, LoopTask, SubWorkflowTask))
            or bool(getattr(spec, "data_input_associations", None))
            or bool(getattr(spec, "data_output_associations", None))
            or getattr(spec, "io_specification", None) is not None)


def _shares_as_inherited(data: dict[str, Any], root: dict[str, Any]) -> bool:
    """Whether ``data`` holds the root's values as ``DeepMerge`` into an empty dict leaves them: lists and
    dicts copied one level deep (their items the root's own), anything else the root's own object."""
    if list(data) != list(root):
        return False
    for key, value in data.items():
        mine, given = root[key], value  # (``given``: not narrowed by the type check below)
        if isinstance(mine, (dict, list, set)):
            if value is mine or type(value) is not type(mine):
                return False
            if isinstance(mine, dict) and any(given[k] is not item for k, item in mine.items()):
                return False
            if isinstance(mine, list) and any(a is not b for a, b in zip(value, mine)):
                return False
        elif value is not mine:
            return False
    return True


def _same(copied: Any, real: Any) -> bool:
    """Whether a template's copy is the workflow the engine's passes made, but for ids and times."""
    if set(vars(copied)) != set(vars(real)) or copied.event_manager.tasks \
            or any(getattr(copied, name) != getattr(real, name) for name in fresh.COMPARED if name != "last_task"):
        return False
    mine, theirs = list(copied.tasks.values()), list(real.tasks.values())
    if len(mine) != len(theirs) or (copied.last_task is None) != (real.last_task is None):
        return False
    position = {task.id: i for i, task in enumerate(mine)}
    other = {task.id: i for i, task in enumerate(theirs)}
    if real.last_task is not None and position[copied.last_task.id] != other[real.last_task.id]:
        return False
    for a, b in zip(mine, theirs):
        if (a.task_spec is not b.task_spec or a._state != b._state or a.triggered != b.triggered
                or a.thread_id != b.thread_id or a.data != b.data or a.internal_data != b.internal_data
                or (a._parent is None) != (b._parent is None)
                or (a._parent is not None and position[a._parent] != other[b._parent])
                or [position[c] for c in a._children] != [other[c] for c in b._children]):
            return False
    return True
