"""A new run's workflow, copied from a template built once per process spec.

SpiffWorkflow builds a new workflow by creating its root task, predicting the tree of tasks
ahead from the spec (one per element on the way, each state change with its log record built)
and readying the root. Nothing of that depends on the run: the start data is set on the root
afterwards (``tiergate.bpmn.moves.Move.create``). So it is done once per spec (a spec is built
once per definition version and cached with it) and kept as a template; each new run copies
the template's tasks: new ids, the same specs, states, flags and (deep-copied) data, and last
state changes moved to now by the same offset (their order is kept: joins sort by it).

A spec is templated only when building its workflow was plainly that, which ``_build``
checks on the workflow it builds: no expression, script or decision was evaluated (the probe
engine counts them), nothing waits for an event, no subprocess, event, correlation or finished
task exists, every task and the workflow hold exactly the attributes a copy sets, and a copy of
it has the same attributes and values. Any other spec builds each new workflow the usual way.
``tests/test_tier1_fresh.py`` compares copies with built workflows for many processes.
"""

from __future__ import annotations

import copy
import logging
import os
import time
from dataclasses import dataclass
from itertools import repeat
from typing import Any
from uuid import UUID, SafeUUID

from SpiffWorkflow.task import Task
from SpiffWorkflow.util.task import TaskState

from tiergate.bpmn.scripting import RestrictedScriptEngine, RestrictedWorkflow

#: What SpiffWorkflow's Task holds; a task with anything else is not copied.
TASK_FIELDS = frozenset({"id", "workflow", "_parent", "_children", "_state", "triggered", "task_spec", "thread_id",
                         "data", "internal_data", "last_state_change"})
#: The workflow's attributes that building it may set differently from restoring it, compared by value.
COMPARED = ("data", "locks", "last_task", "success", "completed", "subprocesses", "bpmn_events", "correlations")
_ATTRIBUTE = "_tiergate_template"
_SPIFF_WORKFLOW_LOG = logging.getLogger("spiff.workflow")


@dataclass(frozen=True)
class Template:
    spec: Any
    tasks: tuple[Task, ...]
    root: UUID
    data: dict[str, Any]
    #: Per task (in ``tasks``' order): the index of its parent (None: the root) and of its children.
    links: tuple[tuple[int | None, tuple[int, ...]], ...] = ()
    #: A first move's template (``tiergate.bpmn.firstmove``), per task: where its data comes from (``ROOT``:
    #: a deep copy of the start data; ``INHERITED``: the root's, as the engine's data inheritance copies it;
    #: ``OWN``: a copy of its own); its last state change to be moved to now (else: the root's); the elements
    #: its passes ran; and the index of the workflow's last task.
    inherits: tuple[int, ...] = ()
    stamp: float | None = None
    passed: frozenset[str] = frozenset()
    last_task: int | None = None


OWN, ROOT, INHERITED = 0, 1, 2
_MUTABLE = (dict, list, set)
_ATOMS = frozenset({str, int, float, bool, type(None)})


def copied(value: dict[str, Any]) -> dict[str, Any]:
    """``copy.deepcopy`` of a dict: one of text, numbers, flags and None (a start event's internal data, most start
    data) copied in one step, as ``deepcopy`` copies it (those it keeps as they are); any other deep-copied."""
    if type(value) is not dict:
        return copy.deepcopy(value)
    for item in value.values():
        if type(item) not in _ATOMS:
            return copy.deepcopy(value)
    return dict(value)


class Probe(RestrictedScriptEngine):
    """The engine a template is built with: it counts what building the workflow evaluated."""

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self.calls = 0

    def evaluate(self, task: Any, expression: Any, external_context: Any = None) -> Any:
        self.calls += 1
        return super().evaluate(task, expression, external_context)

    def execute(self, task: Any, script: Any, external_context: Any = None) -> bool:
        self.calls += 1
        return super().execute(task, script, external_context)

    def decide(self, task: Any, decision_id: str, result_variable: str | None) -> None:
        self.calls += 1
        super().decide(task, decision_id, result_variable)


def new_workflow(spec: Any, subprocess_specs: dict[str, Any], engine: RestrictedScriptEngine) -> RestrictedWorkflow:
    """A new workflow of ``spec`` with ``engine``: a copy of the spec's template, or built when it has none
    (or when SpiffWorkflow's workflow logger is on: building one logs it)."""
    template = None if _SPIFF_WORKFLOW_LOG.isEnabledFor(logging.INFO) else template_of(spec, subprocess_specs)
    if template is None:
        return RestrictedWorkflow(spec, subprocess_specs, script_engine=engine)
    return copy_template(template, spec, subprocess_specs, engine)


def template_of(spec: Any, subprocess_specs: dict[str, Any]) -> Template | None:
    """The spec's template (built on first use), or None for a spec that cannot have one."""
    kept = spec.__dict__.get(_ATTRIBUTE)
    if kept is not None and kept[0] is spec:  # (a copied spec carries its original's: not used)
        return kept[1]  # type: ignore[no-any-return]
    template = _build(spec, subprocess_specs)
    spec.__dict__[_ATTRIBUTE] = (spec, template)  # two threads may both build one: either will do
    return template


def copy_template(template: Template, spec: Any, subprocess_specs: dict[str, Any],
                  engine: RestrictedScriptEngine, data: dict[str, Any] | None = None) -> RestrictedWorkflow:
    """A new workflow from ``template``; a first move's with ``data`` as the start data (``Template.inherits``)."""
    workflow = RestrictedWorkflow(spec, subprocess_specs, script_engine=engine, deserializing=True)
    # New random ids, made as uuid4 makes each (UUID(bytes=os.urandom(16), version=4)), from one read.
    count = len(template.tasks)
    raw = os.urandom(16 * count)
    ids = [_uuid4(int.from_bytes(raw[16 * i:16 * i + 16], "big")) for i in range(count)]
    offset = time.time() - (template.tasks[0].last_state_change if template.stamp is None else template.stamp)
    root = copied(data) if template.inherits else None  # type: ignore[arg-type]
    tasks = workflow.tasks
    for original, new_id, (parent, children), source in zip(template.tasks, ids, template.links,
                                                            template.inherits or repeat(OWN)):
        if source == ROOT:
            task_data = root
        elif source == INHERITED:  # ``DeepMerge.merge({}, parent.data)``: lists and dicts copied one level deep
            task_data = {key: copy.copy(value) if isinstance(value, _MUTABLE) else value
                         for key, value in root.items()}  # type: ignore[union-attr]
        else:
            task_data = copy.deepcopy(original.data) if original.data else {}
        task = Task.__new__(type(original))
        task.__dict__.update(
            id=new_id, workflow=workflow, _parent=None if parent is None else ids[parent],
            _children=[ids[child] for child in children], _state=original._state,
            triggered=original.triggered, task_spec=original.task_spec, thread_id=original.thread_id,
            data=task_data,
            internal_data=copied(original.internal_data) if original.internal_data else {},
            last_state_change=original.last_state_change + offset)
        tasks[task.id] = task
    workflow.task_tree = tasks[ids[0]]  # (the root comes first: ``_build``)
    workflow.data = copy.deepcopy(template.data) if template.data else {}
    if template.last_task is not None:
        workflow.last_task = tasks[ids[template.last_task]]
    return workflow


_VERSION_4 = ~(0xc000 << 48) & ~(0xf000 << 64)
_new = object.__new__
_set = object.__setattr__


def _uuid4(value: int) -> UUID:
    """``UUID(int=value, version=4)``, without ``UUID.__init__``'s checks of the arguments (one per task):
    the same variant and version bits, set the same way, and the same two attributes."""
    made = _new(UUID)
    _set(made, "int", value & _VERSION_4 | 0x8000 << 48 | 4 << 76)
    _set(made, "is_safe", SafeUUID.unknown)
    return made


def _build(spec: Any, subprocess_specs: dict[str, Any]) -> Template | None:
    probe = Probe()
    try:
        built = RestrictedWorkflow(spec, subprocess_specs, script_engine=probe)
    except Exception:  # noqa: BLE001 - a spec that fails to build fails again, the usual way, for the run
        return None
    tasks = tuple(built.tasks.values())
    if probe.calls or probe.journal or probe.over_limit is not None or built.event_manager.tasks \
            or built.subprocesses or built.bpmn_events or built.correlations or built.last_task is not None \
            or built.completed or not tasks or built.task_tree is not tasks[0]:
        return None
    if any(set(vars(task)) != TASK_FIELDS or type(task.id) is not UUID or task.workflow is not built
           or task.has_state(TaskState.FINISHED_MASK | TaskState.WAITING) for task in tasks):
        return None
    index = {task.id: i for i, task in enumerate(tasks)}
    if any((task._parent is not None and task._parent not in index) or any(c not in index for c in task._children)
           for task in tasks):
        return None
    links = tuple((None if task._parent is None else index[task._parent], tuple(index[c] for c in task._children))
                  for task in tasks)
    template = Template(spec=spec, tasks=tasks, root=built.task_tree.id, data=copy.deepcopy(built.data),
                        links=links)
    made = copy_template(template, spec, subprocess_specs, Probe())
    if set(vars(made)) != set(vars(built)) or any(getattr(made, name) != getattr(built, name) for name in COMPARED) \
            or made.event_manager.tasks:
        return None
    return template
