"""A Tier 1 run moved by one long-lived engine (its workflow kept in memory between steps, its
state dumped again only where tasks changed) stores exactly the state that the same steps give
when every step restores the run from the database in a new process (each CLI command is one).

The two runs are compared after every step with what must differ between any two runs left out:
task ids (random; each is named by where it first appears), SpiffWorkflow's ``last_state_change``
clock, the engine's times (``at``, ``ready_at``) and the kept-workflow stamp (``move``).
"""

from __future__ import annotations

import json
import re
from datetime import datetime, timezone
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from support import CLIResult
from test_tier1_instances import camunda_mi, repeated
from tier1_helpers import bpmn, chain, flow, tier1_home, user

from tiergate.store import runs as store
from tiergate.bpmn import dumping, persistence
from tiergate.bpmn.scripting import RestrictedScriptEngine
from tiergate.engine import Engine
from tiergate.store.db import Database

_UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
_VOLATILE = {"last_state_change", "at", "ready_at", "move"}

BODY = ('<bpmn:startEvent id="start"/>'
        + repeated("verify", camunda_mi("tenants", "tenant"))
        + repeated("review", camunda_mi("tenants", "tenant", sequential=True))
        + '<bpmn:exclusiveGateway id="merge"/>' + user("work") + '<bpmn:exclusiveGateway id="more" default="done"/>'
        + '<bpmn:endEvent id="end"/>' + chain("start", "verify", "review", "merge", "work", "more")
        + flow("again", "more", "merge", condition="again") + flow("done", "more", "end"))

START = {"tenants": ["acme", "globex", "initech", "umbrella"], "customer": "acme", "again": True}
STEPS: list[tuple[str, dict[str, Any]]] = [
    ("verify[2]", {"note": "initech checked", "customer": "initech"}),  # overwrites a start key
    ("verify[0]", {"note": "acme checked", "checks": {"payroll": True, "tax": [1, 2]}}),
    ("verify[3]", {"note": "umbrella checked", "customer": "acme"}),  # sets it back to the start value
    ("verify[1]", {"note": "globex checked", "extra": 1.5}),
    ("review[0]", {"note": "acme reviewed"}),
    ("review[1]", {"note": "globex reviewed", "checks": {"payroll": False}}),
    ("review[2]", {"note": "initech reviewed"}),
    ("review[3]", {"note": "umbrella reviewed"}),
    ("work", {"note": "round one", "again": True}),
    ("work", {"note": "round two", "again": True}),
    ("work", {"note": "last round", "again": False}),
]


def _normal(value: Any, names: dict[str, str]) -> Any:
    if isinstance(value, dict):
        return {names.setdefault(k, f"task-{len(names)}") if _UUID.match(k) else k: _normal(v, names)
                for k, v in value.items() if k not in _VOLATILE}
    if isinstance(value, list):
        return [_normal(v, names) for v in value]
    if isinstance(value, str) and _UUID.match(value):
        return names.setdefault(value, f"task-{len(names)}")
    return value


def _stored(db_url: str, run_id: str) -> tuple[str, Any]:
    database = Database(db_url)
    try:
        with database.read() as conn:
            record = store.get_run(conn, run_id)
    finally:
        database.dispose()
    assert record is not None
    return record.status.value, _normal(record.state, {})


def test_a_kept_run_stores_what_a_run_restored_at_every_step_stores(
        tmp_path: Path, db_url: str, make_engine: Callable[..., Engine], cli: Callable[..., CLIResult]) -> None:
    home = tier1_home(tmp_path / "home", {"roll": bpmn("roll", BODY)})
    engine = make_engine(home)
    kept_run = engine.start("roll", START, actor="agent:a").id
    started = cli("start", "roll", "--data", json.dumps(START), "--actor", "agent:a", "--json", home=home)
    assert started.returncode == 0, started
    restored_run = started.json["data"]["id"]
    assert _stored(db_url, kept_run) == _stored(db_url, restored_run)

    for step, evidence in STEPS:
        engine.complete(kept_run, step, evidence, actor="agent:a")
        done = cli("complete", restored_run, step, "--evidence", json.dumps(evidence), "--actor", "agent:a",
                   "--json", home=home)
        assert done.returncode == 0, done
        kept_state, restored_state = _stored(db_url, kept_run), _stored(db_url, restored_run)
        assert kept_state == restored_state, step
        assert kept_state[1]["workflow"]["tasks"] or kept_state[0] == "completed", step  # the tree is compared

    assert _stored(db_url, kept_run)[0] == "completed"
    assert [e["event"] for e in engine.log(kept_run)][-1] == "completed"
    # and the same log: each step announced ready once, completed once, in the same order
    logged = [[(e["event"], e["step"]) for e in engine.log(run)] for run in (kept_run, restored_run)]
    assert logged[0] == logged[1] and ("step_ready", "review[3]") in logged[0]
    assert engine.verify_log()["ok"] is True  # every stored state still hashes to what its entries bind


def test_a_partial_dump_is_the_whole_dump_byte_for_byte(tmp_path: Path, make_engine: Callable[..., Engine],
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    home = tier1_home(tmp_path / "home", {"roll": bpmn("roll", BODY)})
    engine = make_engine(home)
    compared: list[tuple[bool, bool, int]] = []
    partial_dump = dumping.dump

    def compare(workflow: Any) -> Any:  # the move's own dump, held against SpiffWorkflow's whole one
        partial = partial_dump(workflow)
        whole = persistence.dump(workflow)
        compared.append((partial.text == json.dumps(whole), dict(partial) == whole, len(whole["tasks"])))
        return partial

    monkeypatch.setattr(dumping, "dump", compare)
    run = engine.start("roll", START, actor="agent:a").id
    for step, evidence in STEPS:
        engine.complete(run, step, evidence, actor="agent:a")
    assert len(compared) == len(STEPS) + 1
    assert all(same_text and same_dict for same_text, same_dict, _ in compared), compared
    assert max(tasks for _, _, tasks in compared) >= 5  # the instances' tasks were among those compared


def test_a_workflow_restored_from_a_kept_dump_shares_no_value_with_it(tmp_path: Path,
                                                                      make_engine: Callable[..., Engine]) -> None:
    """A kept dump (``Encoded``) is shared between moves; a workflow rebuilt from it (when the kept
    workflow itself is gone) must not change it, or its dict would no longer match its text."""
    engine = make_engine(tier1_home(tmp_path / "home", {"roll": bpmn("roll", BODY)}))
    definition = engine.definitions.process("roll")
    spec, subprocess_specs = definition.specs
    script_engine = RestrictedScriptEngine(decisions=definition.decision_objects, now=datetime.now(timezone.utc))
    workflow = persistence.new_workflow(spec, subprocess_specs, script_engine)
    workflow.task_tree.data.update(START)
    persistence.advance(workflow)
    kept_dump = dumping.dump(workflow)
    text = kept_dump.text
    restored = persistence.restore(kept_dump, spec, subprocess_specs, script_engine)
    restored.correlations["order"] = "A-1"  # SpiffWorkflow adds to these in place when a message is caught
    for task in restored.tasks.values():
        task.data.setdefault("touched", []).append(1)
        task.internal_data["touched"] = True
    assert kept_dump.text == text == json.dumps(dict(kept_dump))
    assert json.dumps(persistence.dump(restored)) != text  # the restored one did change


def test_open_instances_are_not_converted_again_when_another_instance_merges_its_evidence(
        tmp_path: Path, make_engine: Callable[..., Engine], monkeypatch: pytest.MonkeyPatch) -> None:
    """Each instance's dict holds its data as a delta against the activity's data, which every
    completed instance changes (its evidence is merged in). The open instances lack those keys,
    so their deltas stay the same: only the tasks that changed are converted again, and the dump
    is still SpiffWorkflow's whole dump, byte for byte."""
    tenants = [f"tenant-{i}" for i in range(12)]
    body = ('<bpmn:startEvent id="start"/>' + repeated("verify", camunda_mi("tenants", "tenant"))
            + '<bpmn:endEvent id="end"/>' + chain("start", "verify", "end"))
    engine = make_engine(tier1_home(tmp_path / "home", {"roll": bpmn("roll", body)}))
    converted: list[int] = []  # the tasks each partial dump converted
    counting = [False]
    partial_dump, converter = dumping.dump, dumping._converter

    def counting_converter(registry: Any) -> Any:
        convert = converter(registry)

        def count(task: Any) -> Any:
            if counting[0]:
                converted[-1] += 1
            return convert(task)
        return count

    def compare(workflow: Any) -> Any:
        converted.append(0)
        counting[0] = True
        partial = partial_dump(workflow)
        counting[0] = False
        assert partial.text == json.dumps(persistence.dump(workflow))
        return partial

    monkeypatch.setattr(dumping, "_converter", counting_converter)
    monkeypatch.setattr(dumping, "dump", compare)
    run = engine.start("roll", {"tenants": tenants, "customer": "acme"}, actor="agent:a").id
    for index in range(4):  # each with evidence of its own: the activity's data changes every step
        engine.complete(run, f"verify[{index}]", {"note": f"{tenants[index]} checked", "score": index},
                        actor="agent:a")
    # The first merge adds keys to the activity's data (every open instance's delta lists them as
    # deleted): all are converted. After it, a step converts the activity, the instance it completed
    # and the tree's few other tasks, not the 8 instances still open.
    assert converted[1] >= 12 and converted[-1] <= 6 and converted[-2] <= 6, converted
    engine.complete(run, "verify[4]", {"customer": "initech"}, actor="agent:a")  # a key every instance has
    assert converted[-1] >= 7, converted  # so every open instance's delta changed: each converted again
