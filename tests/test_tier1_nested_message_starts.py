"""Message start events of event subprocesses inside a subprocess (real SpiffWorkflow): they wait while the
subprocess is under way, and a message starts them there."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from tier1_helpers import bpmn, chain, props, tier1_home, user

from tiergate.engine import Engine
from tiergate.errors import RefusedError

MESSAGE = '<bpmn:message id="m_hold" name="hold"/>'


def nested(interrupting: bool) -> str:
    on_hold = ('<bpmn:subProcess id="on_hold" triggeredByEvent="true">'
               f'<bpmn:startEvent id="hold_start" isInterrupting="{str(interrupting).lower()}">'
               + props(correlate="case_id") + '<bpmn:messageEventDefinition messageRef="m_hold"/></bpmn:startEvent>'
               + user("note_hold") + '<bpmn:endEvent id="hold_end"/>'
               + chain("hold_start", "note_hold", "hold_end", prefix="h") + '</bpmn:subProcess>')
    handle = ('<bpmn:subProcess id="handle"><bpmn:startEvent id="s_start"/>' + user("work")
              + '<bpmn:endEvent id="s_end"/>' + chain("s_start", "work", "s_end", prefix="s") + on_hold
              + '</bpmn:subProcess>')
    body = ('<bpmn:startEvent id="start"/>' + handle + user("after") + '<bpmn:endEvent id="end"/>'
            + chain("start", "handle", "after", "end"))
    return bpmn("ns", body).replace("</bpmn:process>", "</bpmn:process>" + MESSAGE)


@pytest.mark.parametrize("interrupting", [False, True])
def test_a_message_starts_the_event_subprocess_of_the_subprocess_under_way(
        tmp_path: Path, make_engine: Callable[..., Engine], interrupting: bool) -> None:
    engine = make_engine(tier1_home(tmp_path / "home", {"ns": nested(interrupting)}))
    assert [p for p in engine.check() if p.severity == "error"] == []
    run = engine.start("ns", {"case_id": "C-1"}, actor="agent:a")
    assert engine.status(run.id).ready_steps[0].id == "work"
    with pytest.raises(RefusedError) as err:  # correlated on case_id, read from the run's data
        engine.message("hold", {"case_id": "C-2"}, {}, actor="agent:m")
    assert err.value.reason == "no_waiting_run"
    engine.message("hold", {"case_id": "C-1"}, {"why": "client asked"}, actor="agent:m")
    info = engine.status(run.id)
    log = [(e["event"], e["step"]) for e in engine.log(run.id)]
    assert ("message_received", "hold_start") in log and ("escalated", "on_hold") in log
    if interrupting:
        assert [s.id for s in info.ready_steps] == ["note_hold"]
        assert ("step_skipped", "work") in log
    else:
        assert sorted(s.id for s in info.ready_steps) == ["note_hold", "work"]
        engine.complete(run.id, "work", {}, actor="agent:a")
    info = engine.complete(run.id, "note_hold", {}, actor="agent:a")
    assert [s.id for s in info.ready_steps] == ["after"]
    with pytest.raises(RefusedError):  # the subprocess has ended: its event subprocess waits no more
        engine.message("hold", {"case_id": "C-1"}, {}, actor="agent:m")
    assert engine.complete(run.id, "after", {}, actor="agent:a").status == "completed"


def test_a_step_that_is_not_ready_does_not_wait_for_an_event_subprocess_message(
        tmp_path: Path, make_engine: Callable[..., Engine]) -> None:
    engine = make_engine(tier1_home(tmp_path / "home", {"ns": nested(False)}))
    run = engine.start("ns", {"case_id": "C-1"}, actor="agent:a")
    with pytest.raises(RefusedError) as err:
        engine.complete(run.id, "after", {}, actor="agent:a")
    assert err.value.message == "step 'after' is not ready: it waits for work. Finish those first."
    # With no step ready, the guidance says what the run waits for, and what may come besides.
    waiting = nested(False).replace(user("work"), '<bpmn:receiveTask id="work" messageRef="m_go"/>').replace(
        MESSAGE, MESSAGE + '<bpmn:message id="m_go" name="go"/>')
    other = make_engine(tier1_home(tmp_path / "other", {"ns": waiting}))
    run = other.start("ns", {"case_id": "C-1"}, actor="agent:a")
    text = other.guide(run.id, actor="agent:a")["text"]
    assert "message `go` at `work` (its sender delivers it with `tiergate message go --data '{...}'`)" in text
    assert ("message `hold`, if it comes, starts the event subprocess `on_hold` at `hold_start` (its sender "
            "delivers it with `tiergate message hold --correlate case_id=C-1 --data '{...}'`)") in text
