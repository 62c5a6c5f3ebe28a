"""Shapes found by running SpiffWorkflow's spiff/ and camunda/ test processes through Tier 1
(docs/tier1.md, *Outside processes*): each process here is our own minimal drawing of one, on
SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from tier1_helpers import bpmn, chain, tier1_home, user

from tiergate.engine import Engine


def engine_for(tmp_path: Path, make_engine: Callable[..., Engine], processes: dict[str, str]) -> Engine:
    engine = make_engine(tier1_home(tmp_path / "home", processes))
    assert [p.message for p in engine.check() if p.severity == "error"] == []
    return engine


def camunda_instances(task: str, collection: str, element: str, cardinality: str = "",
                      sequential: bool = False) -> str:
    """A user task with Camunda Modeler's multi-instance marker (and a cardinality, when given)."""
    count = f"<bpmn:loopCardinality>{cardinality}</bpmn:loopCardinality>" if cardinality else ""
    marker = (f'<bpmn:multiInstanceLoopCharacteristics isSequential="{str(sequential).lower()}" '
              f'camunda:collection="{collection}" camunda:elementVariable="{element}">{count}'
              '</bpmn:multiInstanceLoopCharacteristics>')
    body = user(task).replace("</bpmn:userTask>", marker + "</bpmn:userTask>")
    return '<bpmn:startEvent id="start"/>' + body + '<bpmn:endEvent id="end"/>' + chain("start", task, "end")


@pytest.mark.parametrize("sequential", [False, True])
def test_a_camunda_collection_with_a_cardinality_collects_what_each_instance_made(
        tmp_path: Path, make_engine: Callable[..., Engine], sequential: bool) -> None:
    # As SpiffWorkflow reads Camunda's marker: with a loopCardinality, the collection is the output,
    # and each instance's element variable (its index, unless the instance sets it) goes into it.
    engine = engine_for(tmp_path, make_engine, {"poll": bpmn("poll", camunda_instances(
        "ask", "answers", "answer", cardinality="3", sequential=sequential))})
    run = engine.start("poll", {}, actor="human:alice")
    assert run.status == "active"
    for index in range(3):
        assert [s.id for s in run.ready_steps][:1] == [f"ask[{index}]"]
        evidence = {"answer": "yes"} if index == 1 else {}
        run = engine.complete(run.id, f"ask[{index}]", evidence, actor="human:alice")
    assert (run.status, run.data["answers"]) == ("completed", [0, "yes", 2])


@pytest.mark.parametrize("sequential", [False, True])
def test_a_camunda_cardinality_that_is_a_list_is_the_input(
        tmp_path: Path, make_engine: Callable[..., Engine], sequential: bool) -> None:
    engine = engine_for(tmp_path, make_engine, {"visit": bpmn("visit", camunda_instances(
        "check", "checked", "region", cardinality="regions", sequential=sequential))})
    run = engine.start("visit", {"regions": ["north", "south"]}, actor="human:alice")
    seen = []
    while run.ready_steps:
        step = run.ready_steps[0]
        seen.append(step.id)
        run = engine.complete(run.id, step.id, {}, actor="human:alice")
    assert seen == ["check[0]", "check[1]"]
    assert (run.status, run.data["checked"]) == ("completed", ["north", "south"])
    counted = engine.start("visit", {"regions": 2}, actor="human:alice")   # a number is a count
    assert [s.id for s in counted.ready_steps][:1] == ["check[0]"]


def test_a_missing_camunda_collection_is_retried_with_it(tmp_path: Path,
                                                         make_engine: Callable[..., Engine]) -> None:
    engine = engine_for(tmp_path, make_engine, {"rollout": bpmn("rollout", camunda_instances(
        "verify", "tenants", "tenant"))})
    run = engine.start("rollout", {}, actor="human:alice")
    assert run.status == "failed"
    again = engine.retry(run.id, "verify", {"tenants": ["north", "south"]}, actor="human:alice")
    assert (again.status, [s.id for s in again.ready_steps]) == ("active", ["verify[0]", "verify[1]"])


CALLED = ('<bpmn:ioSpecification><bpmn:dataInput id="in_text"/><bpmn:dataOutput id="out_text"/>'
          '<bpmn:inputSet><bpmn:dataInputRefs>in_text</bpmn:dataInputRefs></bpmn:inputSet>'
          '<bpmn:outputSet><bpmn:dataOutputRefs>out_text</bpmn:dataOutputRefs></bpmn:outputSet>'
          '</bpmn:ioSpecification><bpmn:startEvent id="shout_start"/>'
          '<bpmn:scriptTask id="upper"><bpmn:script>out_text = in_text.upper()</bpmn:script></bpmn:scriptTask>'
          '<bpmn:endEvent id="shout_end"/>' + chain("shout_start", "upper", "shout_end", prefix="s"))


def test_a_call_activity_pre_script_runs_before_the_called_process_takes_its_inputs(
        tmp_path: Path, make_engine: Callable[..., Engine]) -> None:
    call = ('<bpmn:callActivity id="shout_it" calledElement="shout"><bpmn:extensionElements>'
            '<spiffworkflow:preScript>in_text = greeting</spiffworkflow:preScript>'
            '<spiffworkflow:postScript>loud = out_text</spiffworkflow:postScript>'
            '</bpmn:extensionElements></bpmn:callActivity>')
    body = ('<bpmn:startEvent id="start"/>' + call + user("read") + '<bpmn:endEvent id="end"/>'
            + chain("start", "shout_it", "read", "end"))
    engine = engine_for(tmp_path, make_engine, {"greet": bpmn("greet", body), "shout": bpmn("shout", CALLED)})
    run = engine.start("greet", {"greeting": "hello"}, actor="human:alice")
    assert (run.status, [s.id for s in run.ready_steps]) == ("active", ["read"])
    assert (run.data["loud"], run.data["greeting"]) == ("HELLO", "hello")
    missing = engine.start("greet", {}, actor="human:alice")   # the pre-script fails, at the call activity
    failed = [(e["step"], e["detail"]["error"]) for e in engine.log(missing.id) if e["event"] == "failed"]
    assert missing.status == "failed" and failed[0][0] == "shout_it" and "greeting" in failed[0][1]


def test_a_call_to_a_function_scripts_do_not_have_is_refused_at_its_line(
        tmp_path: Path, make_engine: Callable[..., Engine]) -> None:
    # SpiffWorkflow's tests add functions to its script environment (my_custom_function, locals);
    # tiergate's scripts have a fixed table, so such a script could only ever fail at run time.
    script = ('<bpmn:scriptTask id="greet">\n<bpmn:script>name = "ann"\n'
              'message = shout(name) if len(name) else ""</bpmn:script></bpmn:scriptTask>')
    fine = '<bpmn:scriptTask id="count"><bpmn:script>size = len([1, 2])</bpmn:script></bpmn:scriptTask>'
    body = ('<bpmn:startEvent id="start"/>' + script + fine + user("read") + '<bpmn:endEvent id="end"/>'
            + chain("start", "greet", "count", "read", "end"))
    xml = bpmn("greeting", body)
    engine = make_engine(tier1_home(tmp_path / "home", {"greeting": xml}))
    errors = [(p.line, p.message) for p in engine.check() if p.severity == "error"]
    line = xml[:xml.index('<bpmn:scriptTask id="greet">')].count("\n") + 1
    assert errors == [(line + 2, "greet: script: 'shout' cannot be called: only these functions may be called: "
                                 "abs, all, any, bool, datetime, dict, enumerate, float, globals, int, len, list, max, "
                                 "min, print, range, reversed, round, set, sorted, str, sum, timedelta, timezone, "
                                 "tuple, vars, zip (functions another "
                                 "engine's script environment adds have no counterpart here) (see docs/tier1.md for "
                                 "what expressions may do).")]


def _message_in_run() -> str:
    ext = ('<bpmn:extensionElements><spiffworkflow:{kind}>{text}</spiffworkflow:{kind}></bpmn:extensionElements>')
    catch = ('<bpmn:intermediateCatchEvent id="wait"><bpmn:messageEventDefinition messageRef="m_note">'
             + ext.format(kind="messageVariable", text="note") + '</bpmn:messageEventDefinition>'
             '</bpmn:intermediateCatchEvent>')
    throw = ('<bpmn:intermediateThrowEvent id="tell"><bpmn:messageEventDefinition messageRef="m_note">'
             + ext.format(kind="messagePayload", text='{"text": words.upper(), "from": "tell"}')
             + '</bpmn:messageEventDefinition></bpmn:intermediateThrowEvent>')
    body = ('<bpmn:startEvent id="start"/><bpmn:parallelGateway id="fork"/><bpmn:parallelGateway id="join"/>'
            + catch + user("prepare") + throw + user("read") + '<bpmn:endEvent id="end"/>'
            + chain("start", "fork", "wait", "join", "read", "end") + chain("fork", "prepare", "tell", "join", prefix="b"))
    return bpmn("noting", body).replace("<bpmn:process ", '<bpmn:message id="m_note" name="note"/>\n<bpmn:process ', 1)


def test_spiff_message_payload_and_variable_shape_what_is_thrown_and_where_it_is_caught(
        tmp_path: Path, make_engine: Callable[..., Engine]) -> None:
    engine = engine_for(tmp_path, make_engine, {"noting": _message_in_run()})
    run = engine.start("noting", {"words": "hi"}, actor="human:alice")
    assert [s.id for s in run.ready_steps] == ["prepare"]
    run = engine.complete(run.id, "prepare", {}, actor="human:alice")
    assert [s.id for s in run.ready_steps] == ["read"]
    assert run.data["note"] == {"text": "HI", "from": "tell"} and "text" not in run.data


def test_a_spiff_message_variable_holds_a_delivered_message_and_a_bad_payload_is_refused_at_its_line(
        tmp_path: Path, make_engine: Callable[..., Engine]) -> None:
    receive = ('<bpmn:receiveTask id="hear" messageRef="m_note"><bpmn:extensionElements>'
               '<spiffworkflow:messageVariable>heard</spiffworkflow:messageVariable></bpmn:extensionElements>'
               '</bpmn:receiveTask>')
    body = '<bpmn:startEvent id="start"/>' + receive + user("read") + '<bpmn:endEvent id="end"/>' + chain(
        "start", "hear", "read", "end")
    xml = bpmn("hearing", body).replace("<bpmn:process ", '<bpmn:message id="m_note" name="note"/>\n<bpmn:process ', 1)
    engine = engine_for(tmp_path, make_engine, {"hearing": xml})
    run = engine.start("hearing", {}, actor="human:alice")
    run = engine.message("note", {}, {"text": "hello"}, actor="agent:bot")
    assert [s.id for s in run.ready_steps] == ["read"]
    assert run.data["heard"] == {"text": "hello"} and "text" not in run.data
    bad = _message_in_run().replace("words.upper()", "words.__class__")
    checked = make_engine(tier1_home(tmp_path / "bad", {"noting": bad}))
    errors = [(p.line, p.message) for p in checked.check() if p.severity == "error"]
    assert errors == [(bad[:bad.index("__class__")].count("\n") + 1,
                       "tell: spiffworkflow:messagePayload: attribute '.__class__' is not allowed: names starting "
                       "with '_' are never read (see docs/tier1.md for what expressions may do).")]


def test_a_form_field_with_its_tasks_id_is_refused_at_the_task(tmp_path: Path,
                                                               make_engine: Callable[..., Engine]) -> None:
    # SpiffWorkflow finds elements by id: here it would find the form field and refuse the file.
    form = ('<bpmn:extensionElements><camunda:formData>\n<camunda:formField id="review" label="Review"/>'
            '</camunda:formData></bpmn:extensionElements>')
    task = user("review").replace("</bpmn:userTask>", form + "</bpmn:userTask>")
    xml = bpmn("reviewing", '<bpmn:startEvent id="start"/>\n' + task + '<bpmn:endEvent id="end"/>'
               + chain("start", "review", "end"))
    engine = make_engine(tier1_home(tmp_path / "home", {"reviewing": xml}))
    errors = [(p.line, p.message) for p in engine.check() if p.severity == "error"]
    line = xml[:xml.index('<bpmn:userTask id="review"')].count("\n") + 1
    assert errors == [(line, "review: the userTask 'review' shares its id with the camunda:formField at line "
                             f"{line + 1}: SpiffWorkflow finds elements by id, so it may build the wrong one. Give "
                             "one of them another id.")]
