"""Call activities whose called process repeats the caller's event, gateway and flow ids (Camunda
Modeler's StartEvent_1, EndEvent_1, Gateway_1, Flow_1): they are renamed in the run; step ids stay unique."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from support import CLIResult
from tier1_helpers import bpmn, chain, flow, tier1_home, user

from tiergate.bpmn.definition import load_process
from tiergate.engine import Engine

GATEWAY = '<bpmn:exclusiveGateway id="Gateway_1" default="{default}"/>'
COMMON = bpmn("common", '<bpmn:startEvent id="StartEvent_1"/>' + GATEWAY.format(default="Flow_2")
              + user("review") + '<bpmn:endEvent id="EndEvent_1"/>'
              + flow("Flow_1", "StartEvent_1", "Gateway_1") + flow("Flow_2", "Gateway_1", "review")
              + flow("Flow_3", "Gateway_1", "EndEvent_1", "skip_review == True")
              + flow("Flow_4", "review", "EndEvent_1"))
TOP = bpmn("top", '<bpmn:startEvent id="StartEvent_1"/>' + user("draft") + GATEWAY.format(default="Flow_3")
           + '<bpmn:callActivity id="call_common" calledElement="common"/><bpmn:endEvent id="EndEvent_1"/>'
           + flow("Flow_1", "StartEvent_1", "draft") + flow("Flow_2", "draft", "Gateway_1")
           + flow("Flow_3", "Gateway_1", "call_common") + flow("Flow_4", "Gateway_1", "EndEvent_1", "skip == True")
           + flow("Flow_5", "call_common", "EndEvent_1"))


def test_a_called_process_may_repeat_the_callers_event_gateway_and_flow_ids(
        tmp_path: Path, make_engine: Callable[..., Engine]) -> None:
    home = tier1_home(tmp_path / "home", {"top": TOP, "common": COMMON})
    engine = make_engine(home)
    assert [p for p in engine.check() if p.severity == "error"] == []
    run = engine.start("top", {}, actor="agent:a")
    info = engine.complete(run.id, "draft", {"skip": False, "skip_review": False}, actor="agent:a")
    assert [s.id for s in info.ready_steps] == ["review"]  # the called process's gateway, not the caller's
    engine = make_engine(home)  # a new engine restores the run from its stored state, with the renamed ids
    info = engine.complete(run.id, "review", {"ok": True}, actor="agent:a")
    assert info.status == "completed"
    assert [e["step"] for e in engine.log(run.id) if e["event"] == "step_completed"] == ["draft", "review"]


def test_the_called_process_takes_its_own_gateway_path(tmp_path: Path, make_engine: Callable[..., Engine]) -> None:
    engine = make_engine(tier1_home(tmp_path / "home", {"top": TOP, "common": COMMON}))
    run = engine.start("top", {}, actor="agent:a")
    info = engine.complete(run.id, "draft", {"skip": False, "skip_review": True}, actor="agent:a")
    assert info.status == "completed" and info.ready_steps == []


def test_repeated_ids_are_renamed_in_the_model_and_nothing_is_mixed(tmp_path: Path) -> None:
    home = tier1_home(tmp_path / "home", {"top": TOP, "common": COMMON})
    definition, problems = load_process(TOP, "processes/top.bpmn", "top", schema_folder=home.root / "processes")
    assert definition is not None and [p for p in problems if p.severity == "error"] == []
    model = definition.model
    assert model.renamed == {"common": {i: f"common.{i}" for i in (
        "EndEvent_1", "Flow_1", "Flow_2", "Flow_3", "Flow_4", "Gateway_1", "StartEvent_1")}}
    assert model.nodes["Gateway_1"].default_flow == "Flow_3" and model.nodes["Gateway_1"].container == "top"
    assert model.nodes["common.Gateway_1"].default_flow == "common.Flow_2"
    assert model.nodes["common.Gateway_1"].container == "call_common"
    assert {(f.source, f.target) for f in model.outgoing("common.Gateway_1")} == {
        ("common.Gateway_1", "review"), ("common.Gateway_1", "common.EndEvent_1")}
    assert [f.id for f in model.outgoing("Gateway_1")] == ["Flow_3", "Flow_4"]
    spec, subprocesses = definition.specs
    assert "common.StartEvent_1" in subprocesses["common"].task_specs and "StartEvent_1" in spec.task_specs
    assert COMMON in definition.called.values()  # the pinned XML is kept as it is


def test_two_steps_with_one_id_are_still_refused_naming_both(tmp_path: Path,
                                                              make_engine: Callable[..., Engine]) -> None:
    common = COMMON.replace('id="review"', 'id="draft"').replace('"review"', '"draft"')
    engine = make_engine(tier1_home(tmp_path / "home", {"top": TOP, "common": common}))
    problems = [p for p in engine.check() if p.severity == "error" and p.path.endswith("top.bpmn")]
    call_line = next(i for i, text in enumerate(TOP.splitlines(), 1) if 'id="call_common"' in text)
    draft_line = call_line  # the helper writes the whole body on one line
    assert [(p.line, p.message) for p in problems] == [(call_line, (
        f"call_common: calls 'common', whose element ids are also used here: userTask 'draft' (line {draft_line} "
        f"of processes/common.bpmn) and userTask 'draft' (line {draft_line}). A step, task or subprocess id names "
        "one thing in the run: rename one of each pair."))]


def test_a_lane_id_of_both_keeps_each_lanes_role(tmp_path: Path, make_engine: Callable[..., Engine]) -> None:
    top = TOP.replace('<bpmn:startEvent id="StartEvent_1"/>', '<bpmn:laneSet id="ls"><bpmn:lane id="lane_0" '
                      'name="lead"><bpmn:flowNodeRef>draft</bpmn:flowNodeRef></bpmn:lane></bpmn:laneSet>'
                      '<bpmn:startEvent id="StartEvent_1"/>', 1)
    common = COMMON.replace('<bpmn:startEvent id="StartEvent_1"/>', '<bpmn:laneSet id="ls"><bpmn:lane id="lane_0" '
                            'name="reviewer"><bpmn:flowNodeRef>review</bpmn:flowNodeRef></bpmn:lane></bpmn:laneSet>'
                            '<bpmn:startEvent id="StartEvent_1"/>', 1)
    engine = make_engine(tier1_home(tmp_path / "home", {"top": top, "common": common}))
    assert [p for p in engine.check() if p.severity == "error"] == []
    run = engine.start("top", {}, actor="human:alice")
    assert run.ready_steps[0].roles == ["lead"]
    info = engine.complete(run.id, "draft", {"skip": False, "skip_review": False}, actor="human:alice")
    assert [(s.id, s.roles) for s in info.ready_steps] == [("review", ["reviewer"])]
    assert engine.complete(run.id, "review", {}, actor="human:carol").status == "completed"


TIMER = ('<bpmn:intermediateCatchEvent id="Event_1"><bpmn:timerEventDefinition><bpmn:{0}>"{1}"</bpmn:{0}>'
         '</bpmn:timerEventDefinition></bpmn:intermediateCatchEvent>')


def test_two_called_processes_and_the_caller_each_keep_their_own_timer(tmp_path: Path) -> None:
    top = bpmn("top", '<bpmn:startEvent id="StartEvent_1"/>' + user("draft") + TIMER.format("timeDate", "2030-01-01")
               + '<bpmn:callActivity id="call_a" calledElement="a"/><bpmn:callActivity id="call_b" calledElement="b"/>'
               + '<bpmn:endEvent id="EndEvent_1"/>'
               + chain("StartEvent_1", "draft", "call_a", "call_b", "Event_1", "EndEvent_1"))
    a = bpmn("a", '<bpmn:startEvent id="StartEvent_1"/>' + user("a_task") + TIMER.format("timeDuration", "PT1H")
             + '<bpmn:endEvent id="EndEvent_1"/>' + chain("StartEvent_1", "a_task", "Event_1", "EndEvent_1"))
    b = bpmn("b", '<bpmn:startEvent id="StartEvent_1"/>' + user("b_task") + '<bpmn:endEvent id="EndEvent_1"/>'
             + chain("StartEvent_1", "b_task", "EndEvent_1"))
    home = tier1_home(tmp_path / "home", {"top": top, "a": a, "b": b})
    definition, problems = load_process(top, "processes/top.bpmn", "top", schema_folder=home.root / "processes")
    assert definition is not None and [p for p in problems if p.severity == "error"] == []
    assert definition.model.renamed == {
        "a": {"EndEvent_1": "a.EndEvent_1", "Event_1": "a.Event_1", "StartEvent_1": "a.StartEvent_1",
              "f_Event_1_EndEvent_1": "a.f_Event_1_EndEvent_1"},
        "b": {"EndEvent_1": "b.EndEvent_1", "StartEvent_1": "b.StartEvent_1"}}
    spec, subprocesses = definition.specs
    timers = {name: (type(one.event_definition).__name__, one.event_definition.expression)
              for name, one in [*spec.task_specs.items(), *subprocesses["a"].task_specs.items()]
              if hasattr(getattr(one, "event_definition", None), "expression")}
    assert timers == {"Event_1": ("ClockTimeDate", '"2030-01-01"'), "a.Event_1": ("ClockDuration", '"PT1H"')}


def test_a_repeated_id_in_one_file_and_a_taken_new_id_are_refused(tmp_path: Path,
                                                                  make_engine: Callable[..., Engine]) -> None:
    inner = ('<bpmn:process id="helper" isExecutable="true"><bpmn:startEvent id="StartEvent_1"/>' + user("help")
             + '<bpmn:endEvent id="h_end"/>' + chain("StartEvent_1", "help", "h_end", prefix="h") + '</bpmn:process>')
    main = bpmn("main", '<bpmn:startEvent id="StartEvent_1"/><bpmn:callActivity id="c" calledElement="helper"/>'
                + '<bpmn:endEvent id="end"/>' + chain("StartEvent_1", "c", "end")).replace("<bpmndi:", inner + "<bpmndi:")
    taken = TOP.replace('<bpmn:endEvent id="EndEvent_1"/>', '<bpmn:endEvent id="EndEvent_1"/><bpmn:endEvent '
                        'id="common.Gateway_1"/>').replace(flow("Flow_5", "call_common", "EndEvent_1"), flow(
                            "Flow_5", "call_common", "common.Gateway_1"))
    engine = make_engine(tier1_home(tmp_path / "home", {"main": main, "top": taken, "common": COMMON}))
    problems = {p.path.rsplit("/", 1)[-1]: p.message for p in engine.check()
                if p.severity == "error" and p.message.startswith(("c: calls", "call_common: calls"))}
    assert problems == {
        "main.bpmn": "c: calls 'helper', whose element ids are also used here: startEvent 'StartEvent_1' (line 5 of "
                     "processes/main.bpmn) and startEvent 'StartEvent_1' (line 4). In one file SpiffWorkflow finds "
                     "elements by id: rename one of each pair.",
        "top.bpmn": "call_common: calls 'common', whose repeated ids would be renamed to common.Gateway_1, which are "
                    "also used: rename those elements."}


def test_scenario_coverage_tells_the_callers_flows_from_the_called_processs(
        tmp_path: Path, cli: Callable[..., CLIResult]) -> None:
    home = tier1_home(tmp_path / "home", {"top": TOP, "common": COMMON})
    home.write("processes/tests/top.yaml", """\
scenarios:
  - name: through the called process's review
    actor: agent:a
    steps:
      - complete: draft
        evidence: {skip: false, skip_review: false}
      - expect: {ready: [review], path: [StartEvent_1, draft, Gateway_1, common.StartEvent_1,
                                         common.Gateway_1, review]}
      - complete: review
        evidence: {}
      - expect: {status: completed}
""")
    result = cli("test", "--json", home=home)
    assert result.returncode == 0, result
    [item] = [i for i in result.json["data"]["coverage"]["processes"] if i["process"] == "top"]
    assert item["uncovered_steps"] == [] and item["flows"] == 9
    assert item["uncovered_flows"] == ["Flow_4", "common.Flow_3"]
