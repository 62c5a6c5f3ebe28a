"""Spiff's pre- and post-scripts on tasks, run in tiergate's sandbox.

SpiffWorkflow's own (Spiff) parser runs a task's ``spiffworkflow:preScript`` when the task
becomes ready and its ``spiffworkflow:postScript`` when it completes (for a user task: after its
evidence is merged, so the script can work from it). tiergate reads processes with the Camunda
parser, so the scripts are read here from the XML and attached to the task specs the same way::

    <bpmn:userTask id="review">
      <bpmn:extensionElements>
        <spiffworkflow:preScript>limit = 2 * base_limit</spiffworkflow:preScript>
        <spiffworkflow:postScript>needs_second_look = amount > limit</spiffworkflow:postScript>
      </bpmn:extensionElements>
    </bpmn:userTask>

They run through the run's ``RestrictedScriptEngine``, exactly as a script task does: tiergate's
restricted Python with its budgets, on a copy of the data (a script that fails sets nothing), and
a failure fails the run at the task. On a multi-instance task they run once for the activity, as
SpiffWorkflow does, not per instance, unless its marker says ``spiffworkflow:scriptsOnInstances="true"``:
then they run on each instance (with its item), as SpiffWorkflow's Spiff parser runs them. ``tiergate check`` checks them like any script, and refuses
them on elements that are not tasks.
"""

from __future__ import annotations

from typing import Any

from lxml import etree
from SpiffWorkflow.util.task import TaskState

from tiergate.bpmn.instances import CHILD_SUFFIX
from tiergate.bpmn.xml import BPMN_NS, SPIFF_NS

KINDS = ("preScript", "postScript")
#: The elements SpiffWorkflow runs pre- and post-scripts on.
TASK_KINDS = frozenset({"task", "userTask", "manualTask", "scriptTask", "serviceTask", "businessRuleTask",
                        "sendTask", "receiveTask", "callActivity", "subProcess"})


def found(tree: etree._ElementTree) -> list[tuple[str, str | None, str | None, str, int]]:
    """(kind, owner id, owner element kind, script, line) of every pre- or post-script in the file."""
    out = []
    for element in tree.getroot().iter(*(f"{{{SPIFF_NS}}}{kind}" for kind in KINDS)):
        parent = element.getparent()
        owner = parent.getparent() if parent is not None else None
        owner_kind = etree.QName(owner).localname if owner is not None else None
        out.append((etree.QName(element).localname, owner.get("id") if owner is not None else None, owner_kind,
                    element.text or "", element.sourceline or 1))
    return out


def scripts_by_element(trees: list[etree._ElementTree]) -> dict[str, dict[str, str]]:
    """{task id: {"preScript": ..., "postScript": ...}} for the tasks that have one."""
    scripts: dict[str, dict[str, str]] = {}
    for tree in trees:
        for kind, owner, owner_kind, text, _line in found(tree):
            if owner and owner_kind in TASK_KINDS and text.strip():
                scripts.setdefault(owner, {})[kind] = text
        for marker in tree.getroot().iter(f"{{{BPMN_NS}}}multiInstanceLoopCharacteristics"):
            owner = marker.getparent()
            if owner is not None and owner.get("id") in scripts and \
                    (marker.get(f"{{{SPIFF_NS}}}scriptsOnInstances") or "").strip().lower() == "true":
                scripts[owner.get("id")]["onInstances"] = "true"
    return scripts


def attach(spec: Any, scripts: dict[str, dict[str, str]]) -> None:
    """Run each task's scripts from its spec's hooks (the activity's spec, for a multi-instance task)."""
    if not scripts:
        return
    for task_spec in spec.task_specs.values():
        element = getattr(task_spec, "bpmn_id", None)
        target = element + CHILD_SUFFIX if element in scripts and scripts[element].get("onInstances") else element
        if element in scripts and task_spec.name == target and not getattr(task_spec, "_tiergate_scripts", False):
            _wrap(task_spec, scripts[element].get("preScript"), scripts[element].get("postScript"))


def _wrap(task_spec: Any, pre: str | None, post: str | None) -> None:
    update, complete = task_spec._update_hook, task_spec._on_complete_hook
    start = getattr(task_spec, "start_workflow", None)
    if pre and start is not None:
        # A call activity or subprocess: before its process starts (so the pre-script can set what the
        # called process's data inputs need), as SpiffWorkflow runs it; it never becomes ready before.
        before = pre

        def start_workflow(my_task: Any) -> Any:
            _run(my_task, before)
            return start(my_task)

        task_spec.start_workflow = start_workflow
        pre = None

    def _update_hook(my_task: Any) -> Any:
        ready = update(my_task)
        if ready and pre:
            _run(my_task, pre)
        return ready

    def _on_complete_hook(my_task: Any) -> None:
        if post:
            _run(my_task, post)
        complete(my_task)

    task_spec._update_hook = _update_hook
    task_spec._on_complete_hook = _on_complete_hook
    task_spec._tiergate_scripts = True


def _run(my_task: Any, script: str) -> None:
    try:
        my_task.workflow.script_engine.execute(my_task, script)
    except Exception:
        my_task._set_state(TaskState.ERROR)  # as SpiffWorkflow does: `tiergate retry` runs the task again
        raise
