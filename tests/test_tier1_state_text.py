"""A run's state is stored as the very text its log entries bind, and read back as the same value.

``store.insert_run`` encodes a new run's state once (the text it hashes) and binds that text;
every JSON column is written with ``store.db.encode_json``, which reuses the text of an
``Encoded`` (a Tier 1 run's task tree) and otherwise spells JSON as ``json.dumps`` does.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from pathlib import Path

import pytest
import sqlalchemy as sa
from tier1_helpers import LINEAR, tier1_home

from tiergate.engine import Engine
from tiergate.jsontext import Encoded
from tiergate.jsontext import dumps as jsontext_dumps
from tiergate.store.db import encode_json


def _stored(engine: Engine, run_id: str) -> tuple[str, str]:
    """The run's state as stored (its text) and the state hash its last log entry binds."""
    with engine.db.read() as conn:
        text = conn.execute(sa.text("SELECT CAST(state AS TEXT) FROM runs WHERE id = :id"), {"id": run_id}).scalar()
        bound = conn.execute(sa.text("SELECT state_hash FROM log_entries WHERE run_id = :id AND state_hash IS NOT "
                                     "NULL ORDER BY seq DESC LIMIT 1"), {"id": run_id}).scalar()
    return text, bound


def test_a_new_runs_state_is_stored_as_the_text_its_log_binds(
        tmp_path: Path, make_engine: Callable[..., Engine]) -> None:
    engine = make_engine(tier1_home(tmp_path / "home", {"linear": LINEAR}))
    run = engine.start("linear", {"ticket": "T-1", "note": "caf\u00e9 \u2603"}, actor="agent:a")
    text, bound = _stored(engine, run.id)
    assert hashlib.sha256(text.encode("utf-8")).hexdigest() == bound
    state = json.loads(text)
    assert text == json.dumps(state) and state["data"]["note"] == "caf\u00e9 \u2603"
    assert len(state["workflow"]["tasks"]) > 1  # the task tree, stored whole
    engine.complete(run.id, "draft", {"note": "a first draft"}, actor="agent:a")
    text, bound = _stored(engine, run.id)
    assert hashlib.sha256(text.encode("utf-8")).hexdigest() == bound


def test_encode_json_spells_json_as_json_dumps_and_reuses_an_encoded_text() -> None:
    value = {"a": [1, 2.5, None, True], "b": {"c": "\u2603"}, "d": []}
    assert encode_json(value) == json.dumps(value)
    part = Encoded({"x": 1}, json.dumps({"x": 1}))
    assert encode_json({"part": part, "n": 2}) == json.dumps({"part": {"x": 1}, "n": 2})
    assert encode_json(Encoded(value, "{\"kept\": true}")) == "{\"kept\": true}"  # the text, not made again


def test_a_moves_copy_of_a_state_equals_a_deep_copy_and_shares_nothing_it_may_change() -> None:
    import copy

    from tiergate.bpmn.statecopy import copy_state

    workflow = Encoded({"tasks": {}}, json.dumps({"tasks": {}}))
    state = {"workflow": workflow, "data": {"a": [1, {"b": 2.5}], "c": None, "d": True},
             "sources": {"a": "inputs", "t": (1, 2)}, "steps": {"s": {"status": "ready", "evidence": {"x": [1]}}},
             "timers": [{"timer": "t1", "due": "2026-12-07T00:00:00Z"}], "due_at": None, "error": None,
             "passed": ["start"], "messages": [], "move": "m1"}
    copied = copy_state(state)
    assert copied == copy.deepcopy(state) and list(copied) == list(state)
    assert copied["workflow"] is workflow  # replaced whole by a move, never changed: shared
    assert copied["data"] is state["data"]  # the data view: only read by a move, replaced whole: shared
    assert copied["sources"]["t"] == (1, 2) and type(copied["sources"]["t"]) is tuple  # other kinds: deep-copied
    for key in ("sources", "timers", "passed", "messages"):
        assert copied[key] is not state[key]
    assert copied["steps"]["s"] is not state["steps"]["s"]
    copied["timers"][0]["due"] = None
    copied["steps"]["s"]["status"] = "done"
    assert state["timers"][0]["due"] == "2026-12-07T00:00:00Z" and state["steps"]["s"]["status"] == "ready"


def test_encode_json_is_json_dumps_for_every_shape_around_an_encoded_part() -> None:
    part = Encoded({"x": [1, "\u00e9"]}, json.dumps({"x": [1, "\u00e9"]}))
    shapes: list[object] = [
        {}, {"a": 1}, [part], {"p": part}, {"a": 1, "p": part, "b": {"c": 2}, "q": part, "z": None},
        {"nested": {"deeper": {"p": part, "n": 1}, "plain": {"k": "v"}}, "after": [1, 2]},
        {1: part, "s": 2}, {"p": part, 2.5: "x", None: True},  # keys json.dumps turns into text
        {"steps": {"a": part, "b": {"status": "ready"}}, "data": {"t": part}},
    ]
    for value in shapes:
        assert encode_json(value) == json.dumps(value), value


def test_jsontext_encode_is_json_dumps_text_and_errors() -> None:
    """The pieces of a Tier 1 state's text are made by ``jsontext.encode``: json.dumps's text, and its errors."""
    from tiergate.jsontext import encode

    class Number(int):
        pass

    class Ratio(float):
        pass

    values: list[object] = [
        {}, [], "caf\u00e9 \u2603 \"q\" \\ \n", 0, -1, 10**30, 2.5, 1e300, 1e-7, float("nan"), float("inf"),
        float("-inf"), True, False, None, Number(7), Ratio(0.1), (1, "t"),
        {"timers": [], "due_at": None, "error": None, "passed": ["start"], "messages": [], "move": "8d62"},
        {"a": {"b": [1, {"c": [None, 2.5, "\ud83d\ude00"]}]}, "": "", "\u00e9": ["\u2028"]},
        {1: "int key", 2.5: "float key", None: "null key", True: "bool key", Number(3): "int subclass key"},
    ]
    for value in values:
        assert encode(value) == json.dumps(value), value
    circular: list[object] = []
    circular.append(circular)
    cycle: dict[str, object] = {}
    cycle["self"] = cycle
    for bad in ({"s": {1, 2}}, [object()], {(1, 2): "tuple key"}, circular, cycle, {"b": b"bytes"}):
        with pytest.raises(Exception) as expected:
            json.dumps(bad)
        with pytest.raises(Exception) as got:
            encode(bad)
        assert (type(got.value), str(got.value)) == (type(expected.value), str(expected.value)), bad
    assert encode({"x": 1}) == json.dumps({"x": 1})  # nothing kept from a failed call


def test_a_kept_tier1_state_handed_out_is_its_stored_text_parsed_and_shares_only_what_never_changes(
        tmp_path: Path, make_engine: Callable[..., Engine]) -> None:
    """``RecentRuns.take`` hands out a kept state equal to its stored text parsed (keys in the same order),
    sharing its ``Encoded`` parts and nothing a move may change."""
    engine = make_engine(tier1_home(tmp_path / "home", {"linear": LINEAR}))
    run = engine.start("linear", {"ticket": "T-2", "tags": ["a", {"b": [1, 2.5]}]}, actor="agent:a")
    for step, evidence in (("draft", {"note": "a first draft"}), (None, None)):
        kept = engine._recent_runs._runs[run.id]
        stored_text = kept.state_json
        handed = engine._recent_runs.take(run.id)
        assert handed is not None and stored_text is not None
        parsed = json.loads(stored_text)
        assert handed.state == parsed and list(handed.state) == list(parsed)
        assert jsontext_dumps(handed.state) == stored_text
        for key, value in handed.state.items():
            if isinstance(value, Encoded):
                assert value is kept.state[key]  # shared: never changed once made
            elif isinstance(value, (dict, list)) and value:
                assert value is not kept.state[key]  # a fresh copy
        for key in ("passed", "timers", "messages"):
            handed.state[key].append("changed by a caller")
        assert jsontext_dumps(kept.state) == stored_text  # the kept record is as it was stored
        engine._recent_runs.put(kept)
        if step is None:
            break
        engine.complete(run.id, step, evidence, actor="agent:a")
