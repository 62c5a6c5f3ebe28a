"""Shapes found by running an outside corpus of BPMN files through Tier 1 (docs/tier1.md, *Outside
processes*): each process here is our own minimal drawing of one, on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from support import row
from tier1_helpers import bpmn, chain, props, tier1_home, user

from tiergate.engine import Engine
from tiergate.errors import InvalidDataError, RefusedError

CORRELATION = ('<bpmn:message id="m_reply" name="reply"/><bpmn:message id="m_order" name="order_placed"/>'
               '<bpmn:correlationProperty id="order_key" name="Order">'
               '<bpmn:correlationPropertyRetrievalExpression messageRef="m_reply">'
               '<bpmn:formalExpression>{reply}</bpmn:formalExpression></bpmn:correlationPropertyRetrievalExpression>'
               '<bpmn:correlationPropertyRetrievalExpression messageRef="m_order">'
               '<bpmn:formalExpression>order_id</bpmn:formalExpression></bpmn:correlationPropertyRetrievalExpression>'
               '</bpmn:correlationProperty>')


def with_correlation(process_id: str, body: str, reply: str = "reply_id") -> str:
    return bpmn(process_id, body).replace("<bpmn:process ", CORRELATION.format(reply=reply) + "\n<bpmn:process ", 1)


def engine_for(tmp_path: Path, make_engine: Callable[..., Engine], processes: dict[str, str]) -> Engine:
    engine = make_engine(tier1_home(tmp_path / "home", processes))
    assert [p.message for p in engine.check() if p.severity == "error"] == []
    return engine


def failed_at(engine: Engine, run_id: str) -> list[tuple[str | None, str]]:
    return [(e["step"], e["detail"]["error"]) for e in engine.log(run_id) if e["event"] == "failed"]


# A loop whose condition names data the run does not have yet.
LOOP = ('<bpmn:startEvent id="start"/>'
        '<bpmn:scriptTask id="count_up"><bpmn:standardLoopCharacteristics testBefore="true" loopMaximum="5">'
        '<bpmn:loopCondition>count &lt; limit</bpmn:loopCondition></bpmn:standardLoopCharacteristics>'
        '<bpmn:script>count = count + 1</bpmn:script></bpmn:scriptTask>'
        + user("report") + '<bpmn:endEvent id="end"/>' + chain("start", "count_up", "report", "end"))


def test_a_loop_whose_condition_failed_is_retried_with_what_the_condition_reads(
        tmp_path: Path, make_engine: Callable[..., Engine]) -> None:
    engine = engine_for(tmp_path, make_engine, {"looping": bpmn("looping", LOOP)})
    run = engine.start("looping", {"count": 0}, actor="human:alice")
    assert run.status == "failed"
    assert failed_at(engine, run.id) == [("count_up", "expression 'count < limit' failed: line 1: NameError: "
                                                      "name 'limit' is not defined")]
    # `limit` is read by the loop condition only: a retry may set it.
    again = engine.retry(run.id, "count_up", {"limit": "many"}, actor="human:alice")
    assert again.status == "failed"   # it fails again, with the new error, and can be retried again
    assert "not supported between" in failed_at(engine, run.id)[-1][1]
    with pytest.raises(RefusedError) as err:
        engine.retry(run.id, "count_up", {"count": 1, "other": 2}, actor="human:alice")
    assert err.value.reason == "data_not_read" and "(count, limit)" in err.value.message
    done = engine.retry(run.id, "count_up", {"limit": 3}, actor="human:alice")
    assert (done.status, [s.id for s in done.ready_steps], done.data["count"]) == ("active", ["report"], 3)


def test_a_correlation_expression_is_checked_at_its_line(tmp_path: Path, make_engine: Callable[..., Engine]) -> None:
    body = ('<bpmn:startEvent id="start"/>' + user("prepare")
            + '<bpmn:intermediateCatchEvent id="wait"><bpmn:messageEventDefinition messageRef="m_reply"/>'
              '</bpmn:intermediateCatchEvent><bpmn:endEvent id="end"/>' + chain("start", "prepare", "wait", "end"))
    # (`reply.id` reads a field, as SpiffWorkflow allows; a method that is not allowed is refused at its line.)
    xml = with_correlation("dotted", body, reply="reply.format(1)").replace("<bpmn:formalExpression>",
                                                                             "\n<bpmn:formalExpression>")
    engine = make_engine(tier1_home(tmp_path / "home", {"dotted": xml}))
    errors = [(p.line, p.message) for p in engine.check() if p.severity == "error"]
    line = xml[:xml.index("reply.format(1)")].count("\n") + 1
    assert errors == [(line, "order_key: correlation property retrieval expression: attribute '.format' is not "
                             "allowed: only the listed methods of text, list, dict and set values and of dates and "
                             "durations may be called (docs/tier1.md) (see docs/tier1.md for what expressions may do).")]


def test_a_message_without_what_its_correlation_property_reads_is_refused_and_the_run_still_waits(
        tmp_path: Path, make_engine: Callable[..., Engine]) -> None:
    body = ('<bpmn:startEvent id="start"/>' + user("prepare")
            + f'<bpmn:intermediateCatchEvent id="wait">{props(correlate="case")}'
              '<bpmn:messageEventDefinition messageRef="m_reply"/></bpmn:intermediateCatchEvent>'
            + user("close") + '<bpmn:endEvent id="end"/>' + chain("start", "prepare", "wait", "close", "end"))
    engine = engine_for(tmp_path, make_engine, {"replies": with_correlation("replies", body)})
    run = engine.start("replies", {"case": "C-1"}, actor="human:alice")
    engine.complete(run.id, "prepare", {}, actor="human:alice")
    before = row(engine, run.id)
    with pytest.raises(InvalidDataError) as err:
        engine.message("reply", {"case": "C-1"}, {"text": "ok"}, actor="agent:mail")
    assert err.value.message.startswith("message 'reply' was not delivered: the process's correlation property for "
                                        "it could not be read from the message's data (")
    assert "name 'reply_id' is not defined" in err.value.message
    assert row(engine, run.id) == before   # nothing delivered, nothing lost
    info = engine.message("reply", {"case": "C-1"}, {"reply_id": "R-9"}, actor="agent:mail")
    assert ([s.id for s in info.ready_steps], info.data["reply_id"]) == (["close"], "R-9")


def test_a_send_task_whose_correlation_expression_failed_is_retried_with_that_data(
        tmp_path: Path, make_engine: Callable[..., Engine]) -> None:
    body = ('<bpmn:startEvent id="start"/><bpmn:sendTask id="place" messageRef="m_order"/>' + user("confirm")
            + '<bpmn:endEvent id="end"/>' + chain("start", "place", "confirm", "end"))
    engine = engine_for(tmp_path, make_engine, {"orders": with_correlation("orders", body)})
    run = engine.start("orders", {}, actor="human:alice")
    assert run.status == "failed" and failed_at(engine, run.id)[0][0] == "place"
    info = engine.retry(run.id, "place", {"order_id": "O-3"}, actor="human:alice")
    assert (info.status, [s.id for s in info.ready_steps]) == ("active", ["confirm"])
    sent = [e["detail"] for e in engine.log(run.id) if e["event"] == "message_sent"]
    assert sent == [{"message": "order_placed"}]


def test_print_in_a_script_writes_nothing_and_the_script_goes_on(
        tmp_path: Path, make_engine: Callable[..., Engine]) -> None:
    script = ('<bpmn:scriptTask id="compute"><bpmn:script>print("total is", total, sep=": ")\n'
              'doubled = total * 2</bpmn:script></bpmn:scriptTask>')
    body = ('<bpmn:startEvent id="start"/>' + script + user("review") + '<bpmn:endEvent id="end"/>'
            + chain("start", "compute", "review", "end"))
    engine = engine_for(tmp_path, make_engine, {"printing": bpmn("printing", body)})
    run = engine.start("printing", {"total": 21}, actor="human:alice")
    assert (run.status, run.data) == ("active", {"total": 21, "doubled": 42})


def test_a_missing_multi_instance_collection_is_named_at_its_task_and_retried_there(
        tmp_path: Path, make_engine: Callable[..., Engine]) -> None:
    verify = user("verify").replace(
        "</bpmn:userTask>", '<bpmn:multiInstanceLoopCharacteristics><bpmn:loopDataInputRef>tenants'
        '</bpmn:loopDataInputRef><bpmn:inputDataItem id="tenant"/></bpmn:multiInstanceLoopCharacteristics>'
        "</bpmn:userTask>")
    body = '<bpmn:startEvent id="start"/>' + verify + '<bpmn:endEvent id="end"/>' + chain("start", "verify", "end")
    engine = engine_for(tmp_path, make_engine, {"rollout": bpmn("rollout", body)})
    for data, shown in (({}, "missing"), ({"tenants": "north"}, '"north", not a list or an object')):
        run = engine.start("rollout", data, actor="human:alice")
        assert run.status == "failed"
        assert failed_at(engine, run.id) == [("verify", f"the multi-instance collection 'tenants' is {shown}: give it "
                                                        "in the start data or an earlier step's evidence, or retry "
                                                        "this element with it")]
    info = engine.retry(run.id, "verify", {"tenants": ["north", "south"]}, actor="human:alice")
    assert (info.status, [s.id for s in info.ready_steps]) == ("active", ["verify[0]", "verify[1]"])


def test_a_duration_with_a_bare_fraction_is_a_timer_as_spiffworkflow_reads_it(
        tmp_path: Path, make_engine: Callable[..., Engine]) -> None:
    from datetime import UTC, datetime, timedelta

    from tiergate.worker import run_pass

    start = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
    pause = ('<bpmn:intermediateCatchEvent id="pause"><bpmn:timerEventDefinition><bpmn:timeDuration>PT.5S'
             '</bpmn:timeDuration></bpmn:timerEventDefinition></bpmn:intermediateCatchEvent>')
    body = ('<bpmn:startEvent id="start"/>' + pause + user("after") + '<bpmn:endEvent id="end"/>'
            + chain("start", "pause", "after", "end"))
    engine = make_engine(tier1_home(tmp_path / "home", {"pausing": bpmn("pausing", body)}), clock=lambda: start)
    assert [p.message for p in engine.check() if p.severity == "error"] == []
    run = engine.start("pausing", {}, actor="human:alice")
    assert run_pass(engine, now=start + timedelta(milliseconds=400)) == []
    assert [f.events[0] for f in run_pass(engine, now=start + timedelta(milliseconds=500))] == ["timer_fired"]
    assert [s.id for s in engine.status(run.id).ready_steps] == ["after"]


@pytest.mark.parametrize("parallel", [True, False])
def test_a_catch_event_with_several_messages_waits_for_each_it_has_not_caught(
        tmp_path: Path, make_engine: Callable[..., Engine], parallel: bool) -> None:
    both = (f'<bpmn:intermediateCatchEvent id="wait" parallelMultiple="{str(parallel).lower()}">'
            '<bpmn:messageEventDefinition messageRef="m_reply"/><bpmn:messageEventDefinition messageRef="m_order"/>'
            '</bpmn:intermediateCatchEvent>')
    body = ('<bpmn:startEvent id="start"/>' + user("prepare") + both + user("close") + '<bpmn:endEvent id="end"/>'
            + chain("start", "prepare", "wait", "close", "end"))
    xml = bpmn("both", body).replace("<bpmn:process ", '<bpmn:message id="m_reply" name="reply"/>'
                                     '<bpmn:message id="m_order" name="order_placed"/><bpmn:process ', 1)
    engine = engine_for(tmp_path, make_engine, {"both": xml})
    run = engine.start("both", {}, actor="human:alice")
    engine.complete(run.id, "prepare", {}, actor="human:alice")
    info = engine.message("reply", {}, {"text": "ok"}, actor="agent:mail")
    if not parallel:   # the first message that comes is enough
        assert ([s.id for s in info.ready_steps], info.data) == (["close"], {"text": "ok"})
        return
    assert info.ready_steps == []
    with pytest.raises(RefusedError) as err:   # caught once: it does not wait for it again
        engine.message("reply", {}, {}, actor="agent:mail")
    assert err.value.reason == "no_waiting_run"
    info = engine.message("order_placed", {}, {"order": 7}, actor="agent:shop")
    assert ([s.id for s in info.ready_steps], info.data) == (["close"], {"text": "ok", "order": 7})


# (A task with several outgoing flows, an implicit split, runs now: tests/test_tier1_implicit.py.)
@pytest.mark.parametrize("body, element, message", [
    ('<bpmn:startEvent id="start"/><bpmn:exclusiveGateway id="choose"/>' + user("a") + user("b")
     + '<bpmn:endEvent id="end"/>' + chain("start", "choose", "a", "end") + chain("choose", "b", "end", prefix="g"),
     "choose", "the exclusive gateway has flows with no condition that are not its default flow: f_choose_a, "
     "g_choose_b. A flow without a condition is always taken, so BPMN would take the first of them every time and "
     "never the others: write the choice as a condition on each flow (e.g. `answer == \"Yes\"`, on a field a step "
     "before sets), and make the flow for all other cases the gateway's default flow."),
])
def test_what_cannot_run_as_drawn_says_what_to_draw(tmp_path: Path, make_engine: Callable[..., Engine],
                                                    body: str, element: str, message: str) -> None:
    xml = bpmn("drawn", body)
    engine = make_engine(tier1_home(tmp_path / "home", {"drawn": xml}))
    errors = [p.message for p in engine.check() if p.severity == "error"]
    assert errors == [f"{element}: {message}"]


def test_pre_and_post_scripts_run_on_each_instance_when_the_marker_says_so(
        tmp_path: Path, make_engine: Callable[..., Engine]) -> None:
    scripts = ('<bpmn:extensionElements><spiffworkflow:preScript>shown = number * 2</spiffworkflow:preScript>'
               '<spiffworkflow:postScript>result = shown + number</spiffworkflow:postScript></bpmn:extensionElements>')
    marker = ('<bpmn:multiInstanceLoopCharacteristics spiffworkflow:scriptsOnInstances="true">'
              '<bpmn:loopDataInputRef>numbers</bpmn:loopDataInputRef><bpmn:loopDataOutputRef>results'
              '</bpmn:loopDataOutputRef><bpmn:inputDataItem id="number"/><bpmn:outputDataItem id="result"/>'
              '</bpmn:multiInstanceLoopCharacteristics>')
    add = user("add").replace("<bpmn:extensionElements>", scripts[:-len("</bpmn:extensionElements>")], 1)
    add = add.replace("</bpmn:userTask>", marker + "</bpmn:userTask>")
    body = '<bpmn:startEvent id="start"/>' + add + '<bpmn:endEvent id="end"/>' + chain("start", "add", "end")
    engine = engine_for(tmp_path, make_engine, {"adding": bpmn("adding", body)})
    run = engine.start("adding", {"numbers": [1, 2]}, actor="human:alice")
    assert [s.id for s in run.ready_steps] == ["add[0]", "add[1]"]
    for step in ("add[0]", "add[1]"):
        run = engine.complete(run.id, step, {}, actor="human:alice")
    assert (run.status, run.data["results"]) == ("completed", [3, 6])


def test_a_step_whose_gate_does_not_require_its_data_outputs_is_a_warning(
        tmp_path: Path, make_engine: Callable[..., Engine]) -> None:
    io = ('<bpmn:ioSpecification><bpmn:dataOutput id="total"/><bpmn:dataOutput id="note"/>'
          '<bpmn:outputSet id="outs"><bpmn:dataOutputRefs>total</bpmn:dataOutputRefs>'
          '<bpmn:dataOutputRefs>note</bpmn:dataOutputRefs></bpmn:outputSet></bpmn:ioSpecification>')
    gate = {"type": "object", "required": ["total"]}
    body = ('<bpmn:startEvent id="start"/>' + user("count", gate=gate).replace("</bpmn:userTask>", io + "</bpmn:userTask>")
            + '<bpmn:endEvent id="end"/>' + chain("start", "count", "end"))
    engine = make_engine(tier1_home(tmp_path / "home", {"counting": bpmn("counting", body)}))
    found = [(p.severity, p.message) for p in engine.check() if "data outputs" in p.message]
    assert found == [("warning", "count: its data outputs note are not required by its gate, and a completion "
                                 "without them fails the run (Missing data output): add them to the gate's "
                                 "`required`, or set them in a postScript.")]


def test_a_retry_may_set_what_an_augmented_assignment_reads(tmp_path: Path,
                                                            make_engine: Callable[..., Engine]) -> None:
    body = ('<bpmn:startEvent id="start"/><bpmn:scriptTask id="bump"><bpmn:script>total += 1</bpmn:script>'
            '</bpmn:scriptTask>' + user("check") + '<bpmn:endEvent id="end"/>' + chain("start", "bump", "check", "end"))
    engine = engine_for(tmp_path, make_engine, {"bumping": bpmn("bumping", body)})
    run = engine.start("bumping", {}, actor="human:alice")
    assert run.status == "failed"
    info = engine.retry(run.id, "bump", {"total": 1}, actor="human:alice")
    assert (info.status, info.data) == ("active", {"total": 2})


@pytest.mark.parametrize("parallel", [True, False])
def test_a_start_event_with_several_messages_starts_a_run_on_either_and_waits_for_the_rest(
        tmp_path: Path, make_engine: Callable[..., Engine], parallel: bool) -> None:
    start = (f'<bpmn:startEvent id="start" parallelMultiple="{str(parallel).lower()}">{props(correlate="case")}'
             '<bpmn:messageEventDefinition messageRef="m_reply"/><bpmn:messageEventDefinition messageRef="m_order"/>'
             '</bpmn:startEvent>')
    body = start + user("close") + '<bpmn:endEvent id="end"/>' + chain("start", "close", "end")
    xml = bpmn("opened", body).replace("<bpmn:process ", '<bpmn:message id="m_reply" name="reply"/>'
                                       '<bpmn:message id="m_order" name="order_placed"/><bpmn:process ', 1)
    engine = engine_for(tmp_path, make_engine, {"opened": xml})
    run = engine.message("order_placed", {"case": "C-1"}, {"order": 7}, actor="agent:shop")
    assert (run.process, run.data) == ("opened", {"case": "C-1", "order": 7})
    if not parallel:
        assert [s.id for s in run.ready_steps] == ["close"]
        return
    assert run.ready_steps == []   # it waits for the other message, with the same case
    info = engine.message("reply", {"case": "C-1"}, {"text": "ok"}, actor="agent:mail")
    assert (info.id, [s.id for s in info.ready_steps]) == (run.id, ["close"])


def test_a_condition_asking_vars_or_globals_whether_a_name_is_set_takes_the_path_it_says(
        tmp_path: Path, make_engine: Callable[..., Engine]) -> None:
    # SpiffWorkflow's processes test whether a field is set with `'x' in vars() or 'x' in globals()` (its
    # script engine evaluates over the task's data); here vars() and globals() are the names the data has.
    gateway = ('<bpmn:exclusiveGateway id="set_or_not" default="f_unset"/>'
               '<bpmn:sequenceFlow id="f_set" sourceRef="set_or_not" targetRef="was_set">'
               "<bpmn:conditionExpression>'urgent' in vars() or 'urgent' in globals()</bpmn:conditionExpression>"
               '</bpmn:sequenceFlow><bpmn:sequenceFlow id="f_unset" sourceRef="set_or_not" targetRef="not_set"/>')
    count = ('<bpmn:scriptTask id="count"><bpmn:script>seen = sorted(vars())\nfound = len(globals())</bpmn:script>'
             '</bpmn:scriptTask>')
    body = ('<bpmn:startEvent id="start"/>' + count + gateway + user("was_set") + user("not_set")
            + '<bpmn:endEvent id="end"/>' + chain("start", "count", "set_or_not")
            + chain("was_set", "end", prefix="a") + chain("not_set", "end", prefix="b"))
    engine = engine_for(tmp_path, make_engine, {"asks": bpmn("asks", body)})
    urgent = engine.start("asks", {"urgent": True, "case": "C-1"}, actor="human:alice")
    assert [s.id for s in urgent.ready_steps] == ["was_set"]
    # what the script set before counts too, as in Python: `seen` is there for globals() on the next line
    assert (urgent.data["seen"], urgent.data["found"]) == (["case", "urgent"], 3)
    plain = engine.start("asks", {"case": "C-2"}, actor="human:alice")
    assert [s.id for s in plain.ready_steps] == ["not_set"]

    # They take no arguments (Python's vars(x) reads an object's attributes): refused by check, at its line.
    odd = body.replace("sorted(vars())", "sorted(vars(case))")
    checked = make_engine(tier1_home(tmp_path / "odd", {"odd": bpmn("odd", odd)})).check()
    assert [p.message for p in checked if p.severity == "error"] == [(
        "count: script: vars() takes no arguments here: vars() and globals() give the names the script sees, as a "
        "dict (see docs/tier1.md for what expressions may do).")]
