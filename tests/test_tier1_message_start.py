"""Tier 1 message start events: a message that no run waits for starts a run of the process that starts on it."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from test_tier1_messages import catch, home_with
from tier1_helpers import chain, user

from tiergate.engine import Engine
from tiergate.errors import RefusedError

# The source system publishes material; the run that ingests it starts on that message, then waits
# for the system's confirmation, correlated by the material id the first message carried.
BODY = (catch("published", "m_ci", kind="startEvent") + user("extract")
        + catch("confirmed", "m_reply", correlate="material_id") + user("publish") + '<bpmn:endEvent id="end"/>'
        + chain("published", "extract", "confirmed", "publish", "end"))


def test_a_message_starts_a_run_with_its_data_and_later_messages_reach_that_run(
        tmp_path: Path, make_engine: Callable[..., Engine]) -> None:
    engine = make_engine(home_with(tmp_path, {"ingest": BODY}))
    assert [p for p in engine.check() if p.severity == "error"] == []
    info = engine.message("ci_passed", {"material_id": "MAT-1"}, {"title": "SSP rates 2025"}, actor="agent:feed")
    assert (info.process, info.status, [s.id for s in info.ready_steps]) == ("ingest", "active", ["extract"])
    assert info.data == {"material_id": "MAT-1", "title": "SSP rates 2025"}
    log = engine.log(info.id)
    assert [e["event"] for e in log][:4] == ["routed", "started", "message_received", "step_ready"]
    assert log[2]["step"] == "published" and log[2]["detail"]["sender"] == "agent:feed"
    second = engine.message("ci_passed", {"material_id": "MAT-2"}, {}, actor="agent:feed")
    assert second.id != info.id  # each message starts its own run

    engine.complete(info.id, "extract", {}, actor="agent:a")
    done = engine.message("client_reply", {"material_id": "MAT-1"}, {"ok": True}, actor="agent:feed")
    assert done.id == info.id and [s.id for s in done.ready_steps] == ["publish"]
    with pytest.raises(RefusedError) as err:  # a message nothing waits for and nothing starts on
        engine.message("client_reply", {"material_id": "MAT-9"}, {}, actor="agent:feed")
    assert err.value.reason == "no_waiting_run"


def test_a_message_start_event_inside_a_subprocess_is_refused(tmp_path: Path,
                                                              make_engine: Callable[..., Engine]) -> None:
    body = ('<bpmn:startEvent id="start"/><bpmn:subProcess id="sub">' + catch("inner", "m_ci", kind="startEvent")
            + '<bpmn:endEvent id="inner_end"/>' + chain("inner", "inner_end", prefix="s") + '</bpmn:subProcess>'
            '<bpmn:endEvent id="end"/>' + chain("start", "sub", "end"))
    engine = make_engine(home_with(tmp_path, {"nested": body}))
    [error] = [p for p in engine.check() if p.severity == "error"]
    assert error.message.startswith("inner: start events must be plain, or wait for a message at the top level")
