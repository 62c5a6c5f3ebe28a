"""``persistence.keeps_all``, the check at ``prune``'s entry: when it says a prune can remove nothing, the
prune would have removed nothing and changed nothing.

Every process of the corpus (``test_tier1_fresh.SPECS``) is run pass by pass, its people's tasks done
one at a time; before each prune, the check's answer is held to what the prune then does, on the
same tree. A restored tree (its ids' objects not shared) is always pruned.
"""

from __future__ import annotations

import json
from typing import Any

from SpiffWorkflow.util.task import TaskState

from test_tier1_fresh import DATA, SPECS
from tiergate.bpmn import fresh, persistence
from tiergate.bpmn.scripting import RestrictedScriptEngine


def _links(workflow: Any) -> dict[Any, tuple[Any, list[Any]]]:
    return {key: (task._parent, list(task._children)) for key, task in workflow.tasks.items()}


def test_a_prune_the_check_spares_would_have_removed_and_changed_nothing() -> None:
    spared = pruned = 0
    for _name, spec, subprocess_specs in SPECS:
        workflow = fresh.new_workflow(spec, subprocess_specs, RestrictedScriptEngine())
        workflow.task_tree.data.update(json.loads(json.dumps(DATA)))
        for _ in range(30):
            try:
                ran = persistence._one_pass(workflow, lambda task: None)
            except persistence.StepFailure:
                break
            if workflow.subprocesses:
                break  # (the check is asked only of a workflow without subprocesses)
            said, before = persistence.keeps_all(workflow), _links(workflow)
            removed = persistence._prune_one(workflow)
            if said:
                assert removed == 0 and _links(workflow) == before
                spared += 1
            elif removed:
                pruned += 1
            if not ran:
                ready = [t for t in workflow.tasks.values() if t.state == TaskState.READY and t.task_spec.manual]
                if not ready:
                    break
                try:
                    ready[0].run()
                except Exception:  # noqa: BLE001 - a task whose data outputs are missing: this run ends here
                    break
    assert spared > 10 and pruned > 10  # (both answers were given, many times)


def test_a_restored_tree_is_pruned_as_before() -> None:
    _name, spec, subprocess_specs = next(s for s in SPECS if s[0] == "linear:linear")
    workflow = fresh.new_workflow(spec, subprocess_specs, RestrictedScriptEngine())
    persistence.advance(workflow)
    assert persistence.keeps_all(workflow)  # the start's chain: each finished task the parent of the next
    restored = persistence.restore(json.loads(json.dumps(persistence.dump(workflow))), spec, subprocess_specs,
                                   RestrictedScriptEngine())
    assert not persistence.keeps_all(restored)  # its parents' ids are other objects: identity cannot tell
    assert persistence.prune(restored) == 0 and _links(restored).keys() == _links(workflow).keys()
