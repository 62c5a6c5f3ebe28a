"""A kept workflow's dump joins its whole text only when something reads it (``tiergate.jsontext.Lazy``).

A state stored in parts (``tiergate.store.parts``) reads the task tree's members and never its whole
text, so a step no longer joins 500 kB it does not use. What is read later must still be the text of
the dump as it was made: the plain values' text is made at once (they may be the live workflow's),
the members' texts were made already, and ``Parted.reaches`` measures the text without joining it.
"""

from __future__ import annotations

import copy
import json
import pickle
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path

import pytest
from SpiffWorkflow.util.task import TaskState
from test_tier1_instances import camunda_mi, repeated
from tier1_helpers import bpmn, chain, tier1_home

from tiergate.bpmn import dumping, persistence
from tiergate.bpmn.scripting import RestrictedScriptEngine
from tiergate.engine import Engine
from tiergate.jsontext import Encoded, Lazy, Member, Parted, dumps


@pytest.mark.parametrize("texts", [[], ["1"], ["1", '"two"'], [f'"{i}"' * i for i in range(40)]])
def test_a_parted_objects_text_is_its_members_joined_when_read(texts: list[str]) -> None:
    members = [Member(f"k{i}", text) for i, text in enumerate(texts)]
    whole = "{" + ", ".join(f'"k{i}": {text}' for i, text in enumerate(texts)) + "}"
    for size in range(len(whole) + 3):
        assert Parted({}, members).reaches(size) == (len(whole) >= size)
    parted = Parted({f"k{i}": None for i in range(len(texts))}, members)
    assert parted.text == whole and parted.reaches(len(whole)) and not parted.reaches(len(whole) + 1)
    for copied in (copy.copy(parted), copy.deepcopy(parted), pickle.loads(pickle.dumps(parted))):
        assert type(copied) is Parted and copied.text == whole and dict(copied) == dict(parted)
    assert dumps({"tasks": parted, "n": 1}) == '{"tasks": ' + whole + ', "n": 1}'


def test_a_lazy_objects_copies_are_plain_encoded_ones() -> None:
    lazy = Lazy({"a": 1}, lambda: '{"a": 1}')
    for copied in (copy.copy(lazy), copy.deepcopy(lazy), pickle.loads(pickle.dumps(lazy))):
        assert type(copied) is Encoded and copied.text == '{"a": 1}' and copied == {"a": 1}


def test_a_dumps_text_read_after_the_workflow_moved_on_is_the_dump_it_was(
        tmp_path: Path, make_engine: Callable[..., Engine]) -> None:
    body = ('<bpmn:startEvent id="start"/>' + repeated("verify", camunda_mi("tenants", "tenant"))
            + '<bpmn:endEvent id="end"/>' + chain("start", "verify", "end"))
    definition = make_engine(tier1_home(tmp_path / "home", {"roll": bpmn("roll", body)})).definitions.process("roll")
    spec, subprocess_specs = definition.specs
    engine = RestrictedScriptEngine(decisions=definition.decision_objects, now=datetime.now(timezone.utc))
    workflow = persistence.new_workflow(spec, subprocess_specs, engine)
    workflow.task_tree.data.update({"tenants": [f"t{i}" for i in range(80)]})
    persistence.advance(workflow)
    dumping.dump(workflow)  # the first dump; the next follows the touched tasks
    workflow.correlations["kept"] = {"id": 1}
    dumped = dumping.dump(workflow)
    expected = json.dumps(persistence.dump(workflow))
    assert isinstance(dumped["tasks"], Parted) and isinstance(dumped, Lazy)
    workflow.correlations["kept"]["id"] = 2  # the live workflow moves on before the text is read
    ready = [t for t in workflow.tasks.values() if t.task_spec.manual and t.state == TaskState.READY]
    ready[0].run()
    persistence.advance(workflow)
    assert dumped.text == expected
    assert json.loads(dumped.text)["correlations"] == {"kept": {"id": 1}}
