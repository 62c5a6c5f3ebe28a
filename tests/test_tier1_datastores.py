"""Tier 1 BPMN data stores: a value the runs of a process share, kept in the database (tiergate.datastores)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from pathlib import Path

import pytest
from tier1_helpers import bpmn, chain, tier1_home, user

from tiergate.engine import Engine

STORE = '<bpmn:dataStore id="counter" name="Run&#10;counter"/>'


def with_store(process_id: str, body: str, stores: str = STORE) -> str:
    """A process whose definitions declare ``stores`` (data stores are root elements, beside the process)."""
    return bpmn(process_id, body).replace("<bpmn:process ", stores + "<bpmn:process ", 1)


def reads(ref: str) -> str:
    return f'<bpmn:dataInputAssociation id="in_{ref}_{{task}}"><bpmn:sourceRef>{ref}</bpmn:sourceRef></bpmn:dataInputAssociation>'


def writes(ref: str) -> str:
    return f'<bpmn:dataOutputAssociation id="out_{ref}_{{task}}"><bpmn:targetRef>{ref}</bpmn:targetRef></bpmn:dataOutputAssociation>'


def script(task_id: str, text: str, *associations: str) -> str:
    links = "".join(a.replace("{task}", task_id) for a in associations)
    return f'<bpmn:scriptTask id="{task_id}">{links}<bpmn:script>{text}</bpmn:script></bpmn:scriptTask>'


def step(task_id: str, *associations: str) -> str:
    links = "".join(a.replace("{task}", task_id) for a in associations)
    return user(task_id).replace("</bpmn:userTask>", links + "</bpmn:userTask>")


#: A script task bumps the counter (it reads and writes the store); a person then sees it and may set it.
COUNTING = with_store("counting", (
    '<bpmn:dataStoreReference id="counter_ref" dataStoreRef="counter"/>'
    '<bpmn:startEvent id="start"/>'
    + script("bump", "counter = (counter or 0) + 1\nseen = counter", reads("counter_ref"), writes("counter_ref"))
    + step("review", reads("counter_ref"), writes("counter_ref"))
    + '<bpmn:endEvent id="end"/>' + chain("start", "bump", "review", "end")))


def engine_for(tmp_path: Path, make_engine: Callable[..., Engine], processes: dict[str, str]) -> Engine:
    engine = make_engine(tier1_home(tmp_path / "home", processes))
    assert [str(p) for p in engine.check() if p.severity == "error"] == []
    return engine


def digest(value: object) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def test_a_value_written_by_one_run_is_read_by_the_next(tmp_path: Path, make_engine: Callable[..., Engine]) -> None:
    engine = engine_for(tmp_path, make_engine, {"counting": COUNTING})
    first = engine.start("counting", {}, actor="agent:a")
    # Never written: the script read None, and wrote 1; the step reads the store's value when it becomes ready.
    assert first.data["seen"] == 1 and first.data["counter"] == 1
    second = engine.start("counting", {}, actor="agent:a")
    assert second.data["seen"] == 2
    # A person completes the step with a value for the store: the data output association writes it.
    engine.complete(first.id, "review", {"counter": 10}, actor="agent:a")
    third = engine.start("counting", {}, actor="agent:a")
    assert third.data["seen"] == 11
    written = [e for e in engine.log(third.id) if e["event"] == "data_store_written"]
    assert [(e["step"], e["actor"], e["detail"]["store"], e["detail"]["version"], e["detail"]["digest"])
            for e in written] == [("bump", "system:tiergate", "counter", 4, digest(11))]
    assert written[0]["detail"]["name"] == "Run counter" and written[0]["detail"]["process"] == "counting"
    shown = engine.data_stores("counting")
    assert [(s["store"], s["value"], s["version"], s["run"], s["step"]) for s in shown] == [
        ("counter", 11, 4, third.id, "bump")]
    assert engine.verify_log()["ok"] is True
