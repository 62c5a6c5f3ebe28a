"""More shapes found by running SpiffWorkflow's own BPMN test processes through Tier 1 (docs/tier1.md,
*Outside processes*): each process here is our own minimal drawing of one, on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from support import row
from tier1_helpers import bpmn, chain, tier1_home, user

from tiergate.engine import Engine
from tiergate.worker import run_pass

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def engine_for(tmp_path: Path, make_engine: Callable[..., Engine], processes: dict[str, str]) -> Engine:
    engine = make_engine(tier1_home(tmp_path / "home", processes), clock=lambda: T0)
    assert [p.message for p in engine.check() if p.severity == "error"] == []
    return engine


def failures(engine: Engine, run_id: str) -> list[tuple[str | None, str]]:
    return [(e["step"], e["detail"]["error"]) for e in engine.log(run_id) if e["event"] == "failed"]


def test_a_retried_intermediate_timer_waits_again_or_fails_again_and_never_stalls(
        tmp_path: Path, make_engine: Callable[..., Engine]) -> None:
    # An intermediate timer whose value is computed from data the run lacks (in SpiffWorkflow's corpus a
    # timer of `timedelta(milliseconds=10)`, a name its own engine does not know either).
    wait = ('<bpmn:intermediateCatchEvent id="wait"><bpmn:timerEventDefinition><bpmn:timeDuration>'
            '"PT" + str(hours) + "H"</bpmn:timeDuration></bpmn:timerEventDefinition></bpmn:intermediateCatchEvent>')
    body = '<bpmn:startEvent id="start"/>' + wait + user("after") + '<bpmn:endEvent id="end"/>' + chain(
        "start", "wait", "after", "end")
    engine = engine_for(tmp_path, make_engine, {"waiting": bpmn("waiting", body)})
    run = engine.start("waiting", {}, actor="human:alice")
    assert run.status == "failed"
    assert failures(engine, run.id)[-1][0] == "wait" and "'hours' is not defined" in failures(engine, run.id)[-1][1]

    # A fix that still gives no duration: the run fails again at once, with the new error.
    again = engine.retry(run.id, "wait", {"hours": "soon"}, actor="human:alice")
    assert again.status == "failed"
    assert len(failures(engine, run.id)) == 2 and "ISO 8601" in failures(engine, run.id)[-1][1]

    # A good fix: the timer waits for its due time, which the run shows, and the worker fires it then.
    waits = engine.retry(run.id, "wait", {"hours": 2}, actor="human:alice")
    assert (waits.status, waits.ready_steps) == ("active", [])
    assert row(engine, run.id)["due_at"] is not None   # the worker will visit it
    assert run_pass(engine, now=T0 + timedelta(hours=1)) == []
    assert [f.events[0] for f in run_pass(engine, now=T0 + timedelta(hours=2))] == ["timer_fired"]
    assert [s.id for s in engine.status(run.id).ready_steps] == ["after"]


# A plain task that writes a data object the run has no value for (SpiffWorkflow: "A data object could not be
# set"); its value comes with the retry, which may set it because the task writes it.
WRITES = ('<bpmn:startEvent id="start"/><bpmn:task id="record"><bpmn:dataOutputAssociation id="out">'
          '<bpmn:targetRef>flag_ref</bpmn:targetRef></bpmn:dataOutputAssociation></bpmn:task>'
          '<bpmn:dataObjectReference id="flag_ref" name="flag" dataObjectRef="flag"/><bpmn:dataObject id="flag"/>'
          '<bpmn:exclusiveGateway id="which" default="to_no"/>' + user("yes_path") + user("no_path")
          + '<bpmn:endEvent id="end"/>' + chain("start", "record", "which")
          + '<bpmn:sequenceFlow id="to_yes" sourceRef="which" targetRef="yes_path"><bpmn:conditionExpression>'
            'flag</bpmn:conditionExpression></bpmn:sequenceFlow>'
          + '<bpmn:sequenceFlow id="to_no" sourceRef="which" targetRef="no_path"/>'
          + '<bpmn:sequenceFlow id="y_end" sourceRef="yes_path" targetRef="end"/>'
          + '<bpmn:sequenceFlow id="n_end" sourceRef="no_path" targetRef="end"/>')


def test_a_task_that_failed_writing_a_data_object_is_retried_with_that_object(
        tmp_path: Path, make_engine: Callable[..., Engine]) -> None:
    import pytest

    from tiergate.errors import RefusedError

    engine = engine_for(tmp_path, make_engine, {"writing": bpmn("writing", WRITES)})
    run = engine.start("writing", {}, actor="human:alice")
    assert run.status == "failed"
    assert failures(engine, run.id) == [("record", "A data object could not be set; 'flag' not exist in the task")]
    with pytest.raises(RefusedError) as err:   # only what the task writes
        engine.retry(run.id, "record", {"other": 1}, actor="human:alice")
    assert err.value.reason == "data_not_read" and "(flag)" in err.value.message
    done = engine.retry(run.id, "record", {"flag": True}, actor="human:alice")
    assert (done.status, [s.id for s in done.ready_steps]) == ("active", ["yes_path"])
    # The same process started with the value runs straight through, as it does on SpiffWorkflow.
    assert [s.id for s in engine.start("writing", {"flag": False}, actor="human:alice").ready_steps] == ["no_path"]


def test_two_elements_with_one_id_and_an_association_to_nothing_are_refused_at_their_lines(
        tmp_path: Path, make_engine: Callable[..., Engine]) -> None:
    body = ('<bpmn:startEvent id="start"/>\n' + user("write") + '\n<bpmn:endEvent id="end"/>'
            '<bpmn:dataObject id="obj"/>\n<bpmn:dataObjectReference id="ref" dataObjectRef="obj"/>'
            '\n<bpmn:dataObjectReference id="ref" dataObjectRef="obj"/>' + chain("start", "write", "end"))
    engine = make_engine(tier1_home(tmp_path / "home", {"twice": bpmn("twice", body)}))
    xml = bpmn("twice", body)
    first = xml[:xml.index('<bpmn:dataObjectReference id="ref"')].count("\n") + 1
    errors = [(p.line, p.message) for p in engine.check() if p.severity == "error"]
    assert errors == [(first + 1, f"ref: the id 'ref' is already used at line {first}: every element needs an id "
                                  "of its own. Rename one of them.")]

    dangling = user("write").replace("</bpmn:userTask>", '<bpmn:dataOutputAssociation id="o"><bpmn:targetRef>gone'
                                     '</bpmn:targetRef></bpmn:dataOutputAssociation></bpmn:userTask>')
    body = '<bpmn:startEvent id="start"/>' + dangling + '<bpmn:endEvent id="end"/>' + chain("start", "write", "end")
    engine = make_engine(tier1_home(tmp_path / "home2", {"dangling": bpmn("dangling", body)}))
    errors = [p.message for p in engine.check() if p.severity == "error"]
    assert errors == ["SpiffWorkflow cannot execute this process (element 'write'): its dataOutputAssociation points "
                      "to 'gone', which is not an element of this file; connect it to a data object reference of "
                      "the process, or delete it."]


def test_the_throwaway_name_underscore_is_allowed_in_scripts_and_dunders_still_are_not(
        tmp_path: Path, make_engine: Callable[..., Engine]) -> None:
    script = ('<bpmn:scriptTask id="repeat"><bpmn:script>lines = [text for _ in range(times)]\n'
              'count = sum(1 for _ in lines)</bpmn:script></bpmn:scriptTask>')
    body = '<bpmn:startEvent id="start"/>' + script + user("read") + '<bpmn:endEvent id="end"/>' + chain(
        "start", "repeat", "read", "end")
    engine = engine_for(tmp_path, make_engine, {"repeating": bpmn("repeating", body)})
    run = engine.start("repeating", {"text": "hi", "times": 3}, actor="human:alice")
    assert (run.status, run.data["lines"], run.data["count"]) == ("active", ["hi", "hi", "hi"], 3)

    dunder = body.replace("for _ in range(times)", "for __x in range(times)")
    engine = make_engine(tier1_home(tmp_path / "home2", {"dunder": bpmn("dunder", dunder)}))
    assert [p.message for p in engine.check() if p.severity == "error"] == [
        "repeat: script: names starting with '_' are not allowed ('__x') (see docs/tier1.md for what expressions "
        "may do)."]


def test_a_camunda_collection_beside_a_number_of_instances_gathers_their_numbers(
        tmp_path: Path, make_engine: Callable[..., Engine]) -> None:
    # Camunda Modeler's collection and element variable with a loopCardinality of 3: SpiffWorkflow's
    # Camunda parser runs three instances and collects each one's element variable (its number).
    review = user("review").replace(
        "</bpmn:userTask>", '<bpmn:multiInstanceLoopCharacteristics camunda:collection="reviewed" '
        'camunda:elementVariable="round"><bpmn:loopCardinality>3</bpmn:loopCardinality>'
        '</bpmn:multiInstanceLoopCharacteristics></bpmn:userTask>')
    body = '<bpmn:startEvent id="start"/>' + review + '<bpmn:endEvent id="end"/>' + chain("start", "review", "end")
    engine = engine_for(tmp_path, make_engine, {"rounds": bpmn("rounds", body)})
    run = engine.start("rounds", {}, actor="human:alice")   # no collection in the data: none is needed
    assert [s.id for s in run.ready_steps] == ["review[0]", "review[1]", "review[2]"]
    for step in ("review[2]", "review[0]", "review[1]"):
        run = engine.complete(run.id, step, {"note": f"done {step}"}, actor="human:alice")
    # in the order the instances finished, as SpiffWorkflow appends them
    assert (run.status, run.data["reviewed"]) == ("completed", [2, 0, 1])


def test_instructions_with_a_bare_name_read_the_data_and_a_bad_rendering_never_fails_a_move(
        tmp_path: Path, make_engine: Callable[..., Engine]) -> None:
    # SpiffWorkflow's instructions name the task's data directly (`{{ person.name }}`): so do a step's
    # (tests/test_tier1_instructions.py); a name nothing in the process sets is a warning of `check`.
    bare = user("greet", docs="Hello {{ person.name }}, {% for x in data.marks %}{{ x }}{% endfor %}")
    body = '<bpmn:startEvent id="start"/>' + bare + '<bpmn:endEvent id="end"/>' + chain("start", "greet", "end")
    engine = make_engine(tier1_home(tmp_path / "home", {"bare": bpmn("bare", body)}))
    assert [p.message for p in engine.check() if p.severity == "error"] == []
    assert [p.message for p in engine.check() if "`person`" in p.message][0].startswith(
        "greet: instructions use `person`, which nothing in this process sets")
    run = engine.start("bare", {"person": {"name": "Ada"}, "marks": [1, 2]}, actor="human:alice")
    assert run.ready_steps[0].instructions == "Hello Ada, 12"

    # A name under data that this run lacks: the run starts, and the step says why it shows no instructions.
    deep = user("greet", docs="Hello {{ data.person.name }}")
    body = '<bpmn:startEvent id="start"/>' + deep + '<bpmn:endEvent id="end"/>' + chain("start", "greet", "end")
    engine = engine_for(tmp_path / "two", make_engine, {"deep": bpmn("deep", body)})
    run = engine.start("deep", {}, actor="human:alice")
    assert run.status == "active" and run.id in [r["id"] for r in engine.runs()]
    assert run.ready_steps[0].instructions.startswith("(The instructions cannot be shown: instructions of step "
                                                      "'greet': 'dict object' has no attribute 'person'")
    done = engine.complete(run.id, "greet", {}, actor="human:alice")
    assert done.status == "completed"
    assert engine.start("deep", {"person": {"name": "Ada"}}, actor="human:alice").ready_steps[0].instructions == (
        "Hello Ada")


def test_a_step_that_writes_a_data_object_its_gate_does_not_require_is_a_warning(
        tmp_path: Path, make_engine: Callable[..., Engine]) -> None:
    writes = ('<bpmn:dataOutputAssociation id="out"><bpmn:targetRef>choice_ref</bpmn:targetRef>'
              '</bpmn:dataOutputAssociation></bpmn:userTask>')
    loose = user("choose", gate={"type": "object"}).replace("</bpmn:userTask>", writes)
    tight = user("choose", gate={"type": "object", "required": ["choice"]}).replace("</bpmn:userTask>", writes)
    objects = '<bpmn:dataObjectReference id="choice_ref" dataObjectRef="choice"/><bpmn:dataObject id="choice"/>'
    found = {}
    for name, step in (("loose", loose), ("tight", tight)):
        body = '<bpmn:startEvent id="start"/>' + step + objects + '<bpmn:endEvent id="end"/>' + chain(
            "start", "choose", "end")
        engine = make_engine(tier1_home(tmp_path / name, {name: bpmn(name, body)}))
        found[name] = [(p.severity, p.message) for p in engine.check() if p.path.endswith(f"{name}.bpmn")]
    assert ("warning", "choose: it writes the data object 'choice', which its gate does not require, and a "
                       "completion without it fails the run (A data object could not be set): add it to the gate's "
                       "`required`, or set it in a postScript.") in found["loose"]
    assert not [m for s, m in found["tight"] if "data object" in m]


def test_a_script_that_deletes_a_name_the_run_lacks_is_retried_with_it(
        tmp_path: Path, make_engine: Callable[..., Engine]) -> None:
    tidy = '<bpmn:scriptTask id="tidy"><bpmn:script>kept = "yes"\ndel(scratch)</bpmn:script></bpmn:scriptTask>'
    body = '<bpmn:startEvent id="start"/>' + tidy + user("after") + '<bpmn:endEvent id="end"/>' + chain(
        "start", "tidy", "after", "end")
    engine = engine_for(tmp_path, make_engine, {"tidying": bpmn("tidying", body)})
    run = engine.start("tidying", {}, actor="human:alice")
    assert run.status == "failed" and "'scratch' is not defined" in failures(engine, run.id)[-1][1]
    done = engine.retry(run.id, "tidy", {"scratch": 1}, actor="human:alice")   # `del` reads it: a retry may set it
    assert (done.status, [s.id for s in done.ready_steps]) == ("active", ["after"])
    assert done.data["kept"] == "yes" and "scratch" not in done.data


def test_a_call_of_a_function_expressions_do_not_have_is_refused_by_check_at_its_element(
        tmp_path: Path, make_engine: Callable[..., Engine]) -> None:
    # SpiffWorkflow's tests put `timedelta` and `custom_function` into their script engine; its default
    # engine has neither. tiergate offers dates and durations (tiergate.bpmn.datetimes), not a host's
    # function: say so at check, not when a run gets there.
    wait = ('<bpmn:intermediateCatchEvent id="wait"><bpmn:timerEventDefinition><bpmn:timeDuration>'
            'timedelta(seconds=1)</bpmn:timeDuration></bpmn:timerEventDefinition></bpmn:intermediateCatchEvent>')
    script = ('<bpmn:scriptTask id="calc"><bpmn:script>size = len(items)\npick = max\nbest = pick(items)\n'
              'c = custom_function(size)</bpmn:script></bpmn:scriptTask>')
    body = ('<bpmn:startEvent id="start"/>' + wait + script + user("after") + '<bpmn:endEvent id="end"/>'
            + chain("start", "wait", "calc", "after", "end"))
    engine = make_engine(tier1_home(tmp_path / "home", {"calls": bpmn("calls", body)}))
    allowed = ("abs, all, any, bool, datetime, dict, enumerate, float, globals, int, len, list, max, min, print, "
               "range, reversed, round, set, sorted, str, sum, timedelta, timezone, tuple, vars, zip")
    elsewhere = " (functions another engine's script environment adds have no counterpart here)"
    assert [p.message for p in engine.check() if p.severity == "error"] == [
        f"calc: script: 'custom_function' cannot be called: only these functions may be called: {allowed}"
        f"{elsewhere} (see docs/tier1.md for what expressions may do)."]
