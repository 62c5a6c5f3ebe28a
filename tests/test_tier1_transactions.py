"""Tier 1 transaction subprocesses and cancel events (real SpiffWorkflow)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from tier1_helpers import bpmn, chain, flow, tier1_home, user

from tiergate.engine import Engine

CANCEL = "<bpmn:cancelEventDefinition/>"
# A booking transaction: book and notify in parallel; a failed booking ends it with a cancel end
# event, which the cancel boundary event on the transaction catches: the process undoes the booking.
TRANSACTION = (
    '<bpmn:transaction id="booking"><bpmn:startEvent id="tx_start"/><bpmn:parallelGateway id="fork"/>'
    + user("book") + user("notify") + '<bpmn:exclusiveGateway id="booked" default="f_ok"/>'
    f'<bpmn:endEvent id="tx_cancel">{CANCEL}</bpmn:endEvent><bpmn:endEvent id="tx_end"/>'
    '<bpmn:endEvent id="tx_notified"/>'
    + chain("tx_start", "fork", "book", "booked", prefix="t") + flow("t_n", "fork", "notify")
    + flow("t_ne", "notify", "tx_notified") + flow("f_ok", "booked", "tx_end")
    + flow("f_fail", "booked", "tx_cancel", "failed") + '</bpmn:transaction>'
    f'<bpmn:boundaryEvent id="cancelled" attachedToRef="booking">{CANCEL}</bpmn:boundaryEvent>')
BODY = ('<bpmn:startEvent id="start"/>' + TRANSACTION + user("confirm") + user("undo")
        + '<bpmn:endEvent id="end"/><bpmn:endEvent id="undone"/>' + chain("start", "booking", "confirm", "end")
        + flow("f_cancelled", "cancelled", "undo", deviation=True) + flow("f_undone", "undo", "undone"))


def engine_for(tmp_path: Path, make_engine: Callable[..., Engine], body: str = BODY) -> Engine:
    return make_engine(tier1_home(tmp_path / "home", {"tx": bpmn("tx", body)}))


def test_a_transaction_that_completes_goes_on_along_its_flow(tmp_path: Path,
                                                             make_engine: Callable[..., Engine]) -> None:
    engine = engine_for(tmp_path, make_engine)
    assert [p for p in engine.check() if p.severity == "error"] == []
    run = engine.start("tx", {}, actor="agent:a")
    assert sorted(s.id for s in run.ready_steps) == ["book", "notify"]
    engine.complete(run.id, "notify", {}, actor="agent:a")
    info = engine.complete(run.id, "book", {"failed": False}, actor="agent:a")
    assert [s.id for s in info.ready_steps] == ["confirm"]
    assert engine.complete(run.id, "confirm", {}, actor="agent:a").status == "completed"
    assert "escalated" not in [e["event"] for e in engine.log(run.id)]


def test_a_cancel_end_event_cancels_the_transaction_and_the_cancel_boundary_takes_over(
        tmp_path: Path, make_engine: Callable[..., Engine]) -> None:
    engine = engine_for(tmp_path, make_engine)
    run = engine.start("tx", {}, actor="agent:a")
    info = engine.complete(run.id, "book", {"failed": True}, actor="agent:a")
    assert [s.id for s in info.ready_steps] == ["undo"]
    log = engine.log(run.id)
    [escalated] = [e for e in log if e["event"] == "escalated"]
    assert escalated["step"] == "booking" and escalated["detail"] == {
        "event": "cancel", "code": None, "by": "cancelled", "task": "booking", "flows": ["f_cancelled"],
        "to": ["undo"], "interrupting": True}
    [skipped] = [e for e in log if e["event"] == "step_skipped"]
    assert skipped["step"] == "notify" and skipped["detail"]["reason"] == "interrupted by cancel (caught by 'cancelled')"
    ready = [e for e in log if e["event"] == "step_ready" and e["step"] == "undo"]
    assert ready[0]["detail"] == {"off_path": True, "flow": "f_cancelled"}
    assert engine.complete(run.id, "undo", {}, actor="agent:a").status == "completed"


def test_cancel_events_outside_a_transaction_are_refused_with_their_line(
        tmp_path: Path, make_engine: Callable[..., Engine]) -> None:
    body = ('<bpmn:startEvent id="start"/><bpmn:subProcess id="plain"><bpmn:startEvent id="s_start"/>'
            f'<bpmn:endEvent id="s_cancel">{CANCEL}</bpmn:endEvent>'
            + chain("s_start", "s_cancel", prefix="s") + '</bpmn:subProcess>'
            f'<bpmn:boundaryEvent id="on_plain" attachedToRef="plain">{CANCEL}</bpmn:boundaryEvent>'
            + user("undo") + '<bpmn:endEvent id="end"/>' + chain("start", "plain", "end")
            + flow("f_u", "on_plain", "undo") + flow("f_e", "undo", "end"))
    errors = sorted(p.message for p in engine_for(tmp_path, make_engine, body).check() if p.severity == "error")
    assert errors == [
        "on_plain: a cancel boundary event must sit on a transaction; use an error boundary event on other activities.",
        "s_cancel: a cancel end event must be inside a transaction (a transaction subprocess); use an error end "
        "event elsewhere."]
