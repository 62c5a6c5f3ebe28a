"""Ad-hoc subprocesses, run as SpiffWorkflow 3.2 runs them, with tiergate's reading of the condition.

SpiffWorkflow's ``AdHocSubprocessSpec`` makes every activity of the subprocess that has no
incoming flow ready when the subprocess starts (they are done in any order, each once; a path
of flows inside runs as drawn), and re-offers a loop or multi-instance activity with a condition
while its condition asks for more. After the start and after each path ends, it evaluates the
**completion condition** over the subprocess's data: when it holds, the subprocess ends, and
with ``cancelRemainingInstances`` (the default) the activities still open are cancelled.
Sequential ordering is not run (``check`` refuses it).

What differs (docs/tier1.md):

* without a completion condition, the subprocess ends when every activity in it is done (or
  skipped); SpiffWorkflow would evaluate nothing and fail;
* a condition that cannot be evaluated yet (it reads a name the data does not have, or a value of
  the wrong type) is not met: the subprocess goes on. It is evaluated at the start too, where
  the evidence it is meant to read does not exist yet. The same holds for a conditional
  activity's condition: it is not offered until its condition can be evaluated and asks for it
  (SpiffWorkflow fails the subprocess's start instead, where no retry could set the name);
* ``cancelRemainingInstances`` is read as drawn (SpiffWorkflow looks for it in the BPMN namespace);
* a conditional activity is offered through its own update (a loop or multi-instance activity
  makes its instances, the steps, instead of completing at once as an engine task), with the
  subprocess's data as it is then, and without linking it to the start in the spec, which all
  runs of a definition version share.

A met condition is noted on the workflow (``met``), so that the move logs the activities it
closed as skipped because of it.
"""

from __future__ import annotations

from typing import Any

from SpiffWorkflow.bpmn.parser.ProcessParser import AdHocParser
from SpiffWorkflow.bpmn.specs.bpmn_process_spec import AdHocSubprocessSpec
from SpiffWorkflow.bpmn.specs.control import SimpleBpmnTask
from SpiffWorkflow.bpmn.specs.mixins.multiinstance_task import MultiInstanceTask, StandardLoopTask
from SpiffWorkflow.specs.MultiChoice import MultiChoice
from SpiffWorkflow.util.deep_merge import DeepMerge
from SpiffWorkflow.util.task import TaskState

from tiergate.bpmn.language import ExpressionError
from tiergate.bpmn.xml import BPMN_NS

#: The attribute of a top workflow listing the ad-hoc subprocesses whose condition was met in this move.
MET = "_tiergate_adhoc_met"


class TiergateAdHocSpec(AdHocSubprocessSpec):
    def path_complete(self, workflow: Any, task: Any) -> None:
        workflow.data.update(**task.data)
        if self.completion_condition is None or not self._met(workflow):
            self._go_on(workflow)
            return
        owner = getattr(workflow, "parent_task_id", None)
        top = getattr(workflow, "top_workflow", None) or workflow
        if owner is not None:
            subprocess = top.get_task_from_id(owner)
            element = getattr(subprocess.task_spec, "bpmn_id", None) or self.name
            met = getattr(top, MET, None)
            if met is None:
                met = []
                setattr(top, MET, met)
            met.append(element)
        if self.cancel_remaining:
            for active in workflow.get_tasks(state=TaskState.NOT_FINISHED_MASK):
                if active.task_spec.name not in (self.end.name, "End"):
                    active.cancel()

    def create_paths(self) -> None:
        """SpiffWorkflow's paths; each conditional one gets an input of its own that never runs (a task needs
        one to become ready), where SpiffWorkflow links it to the start while a run goes, in the shared spec."""
        super().create_paths()
        if self.conditional_paths:
            offer = SimpleBpmnTask(self, f"{self.name}.Offer")
            for task_spec in self.conditional_paths:
                offer.connect(task_spec)

    def add_path(self, workflow: Any, task_spec: Any) -> None:
        """Offer a conditional activity again: as SpiffWorkflow decides, but made ready through its own update,
        so that a loop or multi-instance activity makes its instances (the steps people do) instead of
        completing at once as an engine task; and without linking it to the start in the shared spec."""
        if not self._wanted(workflow, task_spec):
            return
        # It takes its data from the start when it is updated: the start gets the subprocess's data as it is now.
        DeepMerge.merge(workflow.task_tree.data, workflow.data)
        workflow.task_tree.data.pop("data_objects", None)
        child = workflow.task_tree._add_child(task_spec, TaskState.FUTURE)
        child.triggered = True  # kept when the start's children are synced (it is not among its outputs)
        child.task_spec._update(child)

    def _wanted(self, workflow: Any, task_spec: Any) -> bool:
        try:
            return self._asks(workflow, task_spec)
        except ExpressionError:  # it reads what the data lacks (yet): not offered now, asked again after
            return False         # each path ends, like the completion condition

    def _asks(self, workflow: Any, task_spec: Any) -> bool:
        if isinstance(task_spec, MultiChoice):
            return any(cond is None or self.check_condition(cond.args[0], workflow)
                       for cond, _output in task_spec.cond_task_specs)
        if isinstance(task_spec, StandardLoopTask):  # runs while its condition holds
            return task_spec.condition is not None and bool(self.check_condition(task_spec.condition, workflow))
        if isinstance(task_spec, MultiInstanceTask):  # runs until its completion condition holds
            return task_spec.condition is not None and not self.check_condition(task_spec.condition, workflow)
        return False

    def _met(self, workflow: Any) -> bool:
        try:
            return bool(workflow.script_engine.environment.evaluate(self.completion_condition, workflow.data))
        except ExpressionError:
            return False

    def _go_on(self, workflow: Any) -> None:
        """As SpiffWorkflow goes on when the condition is not met: each open path gets the subprocess's data
        (except a loop, multi-instance activity or gateway under way, whose data is its own until it ends),
        and each conditional activity that is not under way is offered if its condition asks for it."""
        under_way = set()
        for branch in workflow.task_tree.children:
            task = workflow.get_next_task(branch, state=TaskState.NOT_FINISHED_MASK)
            if task is None or task.task_spec.name == self.end.name:
                continue
            if not isinstance(task.task_spec, (MultiChoice, StandardLoopTask, MultiInstanceTask)):
                DeepMerge.merge(task.data, workflow.data)
                task.data.pop("data_objects", None)
            if branch.task_spec in self.conditional_paths:
                under_way.add(branch.task_spec.name)
        for task_spec in self.conditional_paths:
            if task_spec.name not in under_way:
                self.add_path(workflow, task_spec)


class TiergateAdHocParser(AdHocParser):
    def create_spec(self) -> TiergateAdHocSpec:
        """SpiffWorkflow reads ``ordering`` and ``cancelRemainingInstances`` in the BPMN namespace, where
        no modeler writes them, so it never sees them: they are read here as drawn (the check refuses
        sequential ordering)."""
        spec = super().create_spec()
        cancel = (self.node.get("cancelRemainingInstances") or "true").strip().lower() != "false"
        return TiergateAdHocSpec(completion_condition=spec.completion_condition, cancel_remaining=cancel,
                                 name=spec.name, description=spec.description, filename=spec.file)


def met(workflow: Any) -> list[str]:
    """The ad-hoc subprocesses whose completion condition was met since the last call (and forget them)."""
    found = getattr(workflow, MET, None) or []
    if found:
        setattr(workflow, MET, [])
    return list(found)


def check(check: Any, tree: Any) -> None:
    """What ``tiergate check`` says about ad-hoc subprocesses beyond SpiffWorkflow's own refusals."""
    for element in tree.getroot().iter(f"{{{BPMN_NS}}}adHocSubProcess"):
        ordering = (element.get("ordering") or "").strip()
        if ordering.lower() == "sequential":
            check.error(element.sourceline or 1, element.get("id"), "an ad-hoc subprocess with sequential ordering "
                        "is not run: SpiffWorkflow offers all of its activities at once (parallel ordering). Remove "
                        "ordering=\"Sequential\", or draw the order with sequence flows.")
