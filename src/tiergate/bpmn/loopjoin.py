"""A parallel gateway that a loop leads back to, counted by rounds that survive pruning.

SpiffWorkflow's ``ParallelGateway`` decides whether a join may fire by the task's ancestry: in
its first round it waits for every incoming flow that can bring a token before the gateway has
run (a flow the loop brings back to it counts as arrived), and in a later round (the task
descends from an earlier one of the same gateway) the flows the first round used count as
arrived through the ancestry, so the gateway goes on with the loop's tokens. tiergate prunes the
finished tasks of a run (``tiergate.bpmn.persistence``), and with them that ancestry, so for a
gateway reached both by a loop and from outside it the same rule is kept here from the spec:

* **First round** (the gateway has not fired in this (sub)workflow): it waits for the incoming
  flows whose source can be reached from the (sub)process's start without passing the gateway.
* **Later rounds**: it waits for the incoming flows whose source can be reached from the
  gateway itself (the loop's flows); the others brought their token in the first round.

That the gateway fired is noted in the internal data of the (sub)workflow's root task, which
pruning keeps. Every other parallel gateway (no loop, or only loops) is decided by
SpiffWorkflow's own function, unchanged. ``tiergate check`` refuses the one shape this does not
cover (a second token on one incoming flow in a round: ``check_merges`` below).
"""

from __future__ import annotations

from typing import Any

from SpiffWorkflow.bpmn.specs.mixins.parallel_gateway import ParallelGateway
from SpiffWorkflow.util.task import TaskState

from tiergate.bpmn import touched
from tiergate.bpmn.model import ProcessModel

#: SpiffWorkflow's own function, for the gateways this module leaves to it.
ORIGINAL = ParallelGateway._check_threshold_unstructured
#: The key in the root task's internal data listing the looped gateways that have fired.
FIRED = "tiergate_loop_joins"
_ROUNDS = "_tiergate_rounds"


def _reachable(starts: list[Any], stop: Any) -> set[int]:
    seen: set[int] = set()
    stack = list(starts)
    while stack:
        spec = stack.pop()
        if id(spec) in seen or spec is stop:
            continue
        seen.add(id(spec))
        stack.extend(spec.outputs)
    return seen


def rounds(gateway: Any, workflow_spec: Any) -> tuple[frozenset[str], frozenset[str]] | None:
    """The inputs (by spec name) the gateway's first round and later rounds wait for, or None when
    SpiffWorkflow's own rule decides (no input comes back by a loop, or every one does)."""
    if hasattr(gateway, _ROUNDS):
        cached: tuple[frozenset[str], frozenset[str]] | None = getattr(gateway, _ROUNDS)
        return cached
    looped_ids = _reachable(list(gateway.outputs), None)
    looped = frozenset(s.name for s in gateway.inputs if id(s) in looped_ids)
    answer: tuple[frozenset[str], frozenset[str]] | None = None
    if looped and len(looped) < len(gateway.inputs):
        before = _reachable([workflow_spec.start], gateway)
        first = frozenset(s.name for s in gateway.inputs if id(s) in before)
        answer = (first or frozenset(s.name for s in gateway.inputs), looped)
    setattr(gateway, _ROUNDS, answer)
    return answer


def may_fire(self: Any, my_task: Any) -> bool:
    """``ParallelGateway._check_threshold_unstructured`` with rounds (see the module docstring)."""
    workflow = my_task.workflow
    answer = rounds(self, workflow.spec)
    if answer is None:
        return bool(ORIGINAL(self, my_task))
    root = workflow.task_tree
    fired = self.name in root.internal_data.get(FIRED, ())
    waiting = set(answer[1] if fired else answer[0])
    for task in [t for t in workflow.tasks.values() if t.task_spec is self]:
        if task.state == TaskState.COMPLETED or task.is_descendant_of(my_task) or my_task.is_descendant_of(task):
            continue
        parent = task.parent
        if parent is not None and parent.state == TaskState.COMPLETED:
            waiting.discard(parent.task_spec.name)
    if waiting:
        return False
    if not fired:
        root.internal_data[FIRED] = [*root.internal_data.get(FIRED, []), self.name]
        touched.mark(root)
    return True


def _flows_after(model: ProcessModel, start: str) -> set[str]:
    seen: set[str] = set()
    stack = [f.target for f in model.outgoing(start)]
    while stack:
        current = stack.pop()
        if current in seen:
            continue
        seen.add(current)
        stack.extend(f.target for f in model.outgoing(current))
        stack.extend(n.id for n in model.boundary_events(current))
    return seen


def check_merges(check: Any) -> None:
    """``tiergate check``: a parallel gateway a loop leads back to runs by the rounds above; what does not is
    a second token on one incoming flow in the same round (an exclusive gateway merging parallel branches in
    front of it): the late token meets a join the loop has already passed, and SpiffWorkflow 3.2 fails on it
    or runs the loop's remainder twice. Refused at the gateway's line."""
    model = check.model
    for node in model.nodes.values():
        if node.kind != "parallelGateway":
            continue
        incoming = [f for f in model.flows.values() if f.target == node.id]
        if len(incoming) < 2:
            continue
        after = _flows_after(model, node.id)
        looped = [f for f in incoming if f.source in after]
        if not looped or len(looped) == len(incoming):
            continue
        for flow in incoming:
            if flow in looped:
                continue
            split = _parallel_branches_merged(model, flow.source, node.id)
            if split is not None:
                check.error(node.line, node.id, f"the parallel gateway is reached again by the loop through "
                            f"{looped[0].id}, and its incoming flow {flow.id} comes from the exclusive gateway "
                            f"'{flow.source}', which merges parallel branches of '{split}': a second token "
                            "reaches it in the same round, after the loop may have passed, and SpiffWorkflow "
                            "cannot join it. Join those branches with a parallel gateway before they reach "
                            f"'{node.id}'.")
                break


def _parallel_branches_merged(model: ProcessModel, merge: str, stop: str) -> str | None:
    """The parallel gateway whose separate branches meet at the exclusive gateway ``merge``, if any."""
    node = model.nodes.get(merge)
    if node is None or node.kind not in ("exclusiveGateway", "inclusiveGateway"):
        return None
    branches: list[dict[str, set[str]]] = []
    for flow in (f for f in model.flows.values() if f.target == merge):
        splits: dict[str, set[str]] = {}
        stack, seen = [flow], set()
        while stack:
            current = stack.pop()
            if current.id in seen:
                continue
            seen.add(current.id)
            source = model.nodes.get(current.source)
            if source is None or source.id == stop:
                continue
            if source.kind == "parallelGateway" and len(model.outgoing(source.id)) > 1:
                splits.setdefault(source.id, set()).add(current.id)
            stack.extend(f for f in model.flows.values() if f.target == source.id)
        branches.append(splits)
    for i, first in enumerate(branches):
        for second in branches[i + 1:]:
            for split in sorted(first.keys() & second.keys()):
                if not first[split] & second[split]:
                    return split
    return None


def install() -> None:
    ParallelGateway._check_threshold_unstructured = may_fire  # type: ignore[method-assign]


install()
