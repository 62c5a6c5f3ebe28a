"""Implicit splits, joins and starts run as BPMN 2.0 defines them (tiergate.bpmn.implicit).

SpiffWorkflow's parser refuses an activity with several outgoing flows and a subprocess without a
start event; tiergate draws the gateway or start event they mean before the parser sees the tree,
and the run names only the drawn elements.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from tier1_helpers import bpmn, chain, flow, tier1_home, user

from tiergate.engine import Engine


def ready(info: object) -> list[str]:
    return sorted(s.id for s in info.ready_steps)  # type: ignore[attr-defined]


def steps_logged(engine: Engine, run_id: str) -> set[str]:
    return {e["step"] for e in engine.log(run_id) if e["step"]}


SPLIT = bpmn("split", '<bpmn:startEvent id="start"/>' + user("a") + user("b") + user("c") + '<bpmn:endEvent id="end"/>'
             + chain("start", "a") + flow("f_ab", "a", "b") + flow("f_ac", "a", "c") + chain("b", "end", prefix="g")
             + chain("c", "end", prefix="h"))


def test_an_activity_with_two_plain_flows_starts_both_branches(tmp_path: Path,
                                                               make_engine: Callable[..., Engine]) -> None:
    engine = make_engine(tier1_home(tmp_path / "home", {"split": SPLIT}))
    assert [p for p in engine.check() if p.severity == "error"] == []
    run = engine.start("split", {}, actor="agent:a")
    info = engine.complete(run.id, "a", {}, actor="agent:a")
    assert ready(info) == ["b", "c"]
    # The end event has two incoming flows: each branch reaches it, and the run ends after both.
    assert engine.complete(run.id, "b", {}, actor="agent:a").status == "active"
    assert engine.complete(run.id, "c", {}, actor="agent:a").status == "completed"
    assert steps_logged(engine, run.id) == {"a", "b", "c"}  # the generated gateway is the engine's, not a step
    assert "a__split" not in str(engine.log(run.id)) and "a__split" not in str(engine.status(run.id))


INCLUSIVE = bpmn("mini", '<bpmn:startEvent id="start"/>' + user("a").replace('id="a"', 'id="a" default="f_ad"')
                 + user("b") + user("c") + user("d") + '<bpmn:endEvent id="end"/>'
                 + chain("start", "a") + flow("f_ab", "a", "b", "x > 1") + flow("f_ac", "a", "c", "x > 5")
                 + flow("f_ad", "a", "d") + chain("b", "end", prefix="g") + chain("c", "end", prefix="h")
                 + chain("d", "end", prefix="i"))


def test_conditional_flows_out_of_an_activity_fire_each_that_holds_else_the_default(
        tmp_path: Path, make_engine: Callable[..., Engine]) -> None:
    engine = make_engine(tier1_home(tmp_path / "home", {"mini": INCLUSIVE}))
    assert [p for p in engine.check() if p.severity == "error"] == []
    for x, expected in ((3, ["b"]), (10, ["b", "c"]), (0, ["d"])):
        run = engine.start("mini", {}, actor="agent:a")
        info = engine.complete(run.id, "a", {"x": x}, actor="agent:a")
        assert ready(info) == expected, x
        for step in expected:
            info = engine.complete(run.id, step, {}, actor="agent:a")
        assert info.status == "completed"


def test_a_plain_flow_beside_a_conditional_one_always_fires(tmp_path: Path,
                                                           make_engine: Callable[..., Engine]) -> None:
    xml = bpmn("mixed", '<bpmn:startEvent id="start"/>' + user("a") + user("b") + user("c") + '<bpmn:endEvent id="end"/>'
               + chain("start", "a") + flow("f_ab", "a", "b") + flow("f_ac", "a", "c", "urgent")
               + chain("b", "end", prefix="g") + chain("c", "end", prefix="h"))
    engine = make_engine(tier1_home(tmp_path / "home", {"mixed": xml}))
    run = engine.start("mixed", {}, actor="agent:a")
    assert ready(engine.complete(run.id, "a", {"urgent": False}, actor="agent:a")) == ["b"]
    run = engine.start("mixed", {}, actor="agent:a")
    assert ready(engine.complete(run.id, "a", {"urgent": True}, actor="agent:a")) == ["b", "c"]


def test_two_flows_into_an_activity_activate_it_twice(tmp_path: Path, make_engine: Callable[..., Engine]) -> None:
    xml = bpmn("merge", '<bpmn:startEvent id="start"/>' + user("a") + user("b") + user("c") + user("d")
               + '<bpmn:endEvent id="end"/>' + chain("start", "a") + flow("f_ab", "a", "b") + flow("f_ac", "a", "c")
               + flow("f_bd", "b", "d") + flow("f_cd", "c", "d") + chain("d", "end"))
    engine = make_engine(tier1_home(tmp_path / "home", {"merge": xml}))
    run = engine.start("merge", {}, actor="agent:a")
    engine.complete(run.id, "a", {}, actor="agent:a")
    assert ready(engine.complete(run.id, "b", {"by": "b"}, actor="agent:a")) == ["c", "d"]
    info = engine.complete(run.id, "d", {}, actor="agent:a")
    assert ready(info) == ["c"] and info.status == "active"
    assert ready(engine.complete(run.id, "c", {"by": "c"}, actor="agent:a")) == ["d"]
    assert engine.complete(run.id, "d", {}, actor="agent:a").status == "completed"
    done = [e["step"] for e in engine.log(run.id) if e["event"] == "step_completed"]
    assert done == ["a", "b", "d", "c", "d"]


def test_a_subprocess_without_a_start_event_starts_each_activity_without_an_incoming_flow(
        tmp_path: Path, make_engine: Callable[..., Engine]) -> None:
    sub = '<bpmn:subProcess id="sub">' + user("x") + user("y") + user("z") + flow("f_yz", "y", "z") + '</bpmn:subProcess>'
    xml = bpmn("nostart", '<bpmn:startEvent id="start"/>' + sub + user("after") + '<bpmn:endEvent id="end"/>'
               + chain("start", "sub", "after", "end"))
    engine = make_engine(tier1_home(tmp_path / "home", {"nostart": xml}))
    assert [p for p in engine.check() if p.severity == "error"] == []
    run = engine.start("nostart", {}, actor="agent:a")
    assert ready(run) == ["x", "y"]
    assert ready(engine.complete(run.id, "y", {}, actor="agent:a")) == ["x", "z"]
    assert ready(engine.complete(run.id, "x", {}, actor="agent:a")) == ["z"]
    # The subprocess completes when every path in it has ended, then the flow after it goes on.
    assert ready(engine.complete(run.id, "z", {}, actor="agent:a")) == ["after"]
    assert engine.complete(run.id, "after", {}, actor="agent:a").status == "completed"
    assert steps_logged(engine, run.id) == {"x", "y", "z", "after"}
    shown = str(engine.log(run.id)) + str(engine.status(run.id))
    assert "sub__start" not in shown and "sub__end" not in shown


def test_a_deviation_flow_out_of_an_implicit_split_marks_its_branch_off_path(
        tmp_path: Path, make_engine: Callable[..., Engine]) -> None:
    xml = bpmn("offpath", '<bpmn:startEvent id="start"/>' + user("a") + user("b") + user("c") + '<bpmn:endEvent id="end"/>'
               + chain("start", "a") + flow("f_ab", "a", "b") + flow("f_ac", "a", "c", "late", deviation=True)
               + chain("b", "end", prefix="g") + chain("c", "end", prefix="h"))
    engine = make_engine(tier1_home(tmp_path / "home", {"offpath": xml}))
    run = engine.start("offpath", {}, actor="agent:a")
    engine.complete(run.id, "a", {"late": True}, actor="agent:a")
    details = {e["step"]: e["detail"] for e in engine.log(run.id) if e["event"] == "step_ready"}
    assert details["b"] == {} and details["c"] == {"off_path": True, "flow": "f_ac"}


def test_two_tokens_waiting_at_once_in_an_implicit_join_are_two_activations(
        tmp_path: Path, make_engine: Callable[..., Engine]) -> None:
    xml = bpmn("twice", '<bpmn:startEvent id="start"/>' + user("a") + user("b") + user("c") + user("d")
               + '<bpmn:endEvent id="end"/>' + chain("start", "a") + flow("f_ab", "a", "b") + flow("f_ac", "a", "c")
               + flow("f_bd", "b", "d") + flow("f_cd", "c", "d") + chain("d", "end"))
    engine = make_engine(tier1_home(tmp_path / "home", {"twice": xml}))
    run = engine.start("twice", {}, actor="agent:a")
    engine.complete(run.id, "a", {}, actor="agent:a")
    engine.complete(run.id, "b", {}, actor="agent:a")
    assert ready(engine.complete(run.id, "c", {}, actor="agent:a")) == ["d"]
    info = engine.complete(run.id, "d", {"first": True}, actor="agent:a")
    assert ready(info) == ["d"] and info.status == "active"  # the second token still waits at d
    assert engine.complete(run.id, "d", {}, actor="agent:a").status == "completed"
    assert [e["step"] for e in engine.log(run.id) if e["event"] == "step_completed"].count("d") == 2


def test_an_empty_subprocess_completes_at_once_and_check_warns(tmp_path: Path,
                                                               make_engine: Callable[..., Engine]) -> None:
    xml = bpmn("empty", '<bpmn:startEvent id="start"/><bpmn:subProcess id="later" name="Later"/>' + user("after")
               + '<bpmn:endEvent id="end"/>' + chain("start", "later", "after", "end"))
    engine = make_engine(tier1_home(tmp_path / "home", {"empty": xml}))
    found = [(p.severity, p.message) for p in engine.check() if "later" in p.message]
    warning = ("later: the subprocess is empty (drawn collapsed, its content not modelled): it completes at once, "
               "like a plain task. Draw its activities in it if someone must do them.")
    assert found == [("warning", warning)]
    run = engine.start("empty", {}, actor="agent:a")
    assert ready(run) == ["after"]
    assert engine.complete(run.id, "after", {}, actor="agent:a").status == "completed"


def test_a_flow_without_a_condition_out_of_an_inclusive_gateway_always_fires(
        tmp_path: Path, make_engine: Callable[..., Engine]) -> None:
    xml = bpmn("incl", '<bpmn:startEvent id="start"/><bpmn:inclusiveGateway id="or" default="f_d"/>' + user("b")
               + user("c") + user("d") + '<bpmn:endEvent id="end"/>' + chain("start", "or") + flow("f_b", "or", "b")
               + flow("f_c", "or", "c", "x > 1") + flow("f_d", "or", "d") + chain("b", "end", prefix="g")
               + chain("c", "end", prefix="h") + chain("d", "end", prefix="i"))
    engine = make_engine(tier1_home(tmp_path / "home", {"incl": xml}))
    assert ready(engine.start("incl", {"x": 0}, actor="agent:a")) == ["b"]
    assert ready(engine.start("incl", {"x": 2}, actor="agent:a")) == ["b", "c"]


def test_an_exclusive_choice_drawn_without_conditions_is_refused_at_the_gateway(
        tmp_path: Path, make_engine: Callable[..., Engine]) -> None:
    xml = bpmn("xor", '<bpmn:startEvent id="start"/>\n<bpmn:exclusiveGateway id="done" name="Done?"/>\n' + user("b")
               + user("c") + '<bpmn:endEvent id="end"/>' + chain("start", "done")
               + '<bpmn:sequenceFlow id="f_yes" name="Yes" sourceRef="done" targetRef="b"/>'
               + '<bpmn:sequenceFlow id="f_no" name="No" sourceRef="done" targetRef="c"/>'
               + chain("b", "end", prefix="g") + chain("c", "end", prefix="h"))
    engine = make_engine(tier1_home(tmp_path / "home", {"xor": xml}))
    [problem] = [p for p in engine.check() if p.severity == "error"]
    assert problem.line == xml[:xml.index('id="done"')].count("\n") + 1
    assert problem.message.startswith("done: the exclusive gateway 'Done?' has flows with no condition that are not "
                                      "its default flow: f_yes ('Yes'), f_no ('No').")
    # With one of them the default flow, the other needs a condition or must be the default itself.
    one = xml.replace('id="done" name="Done?"', 'id="done" name="Done?" default="f_no"')
    engine = make_engine(tier1_home(tmp_path / "home2", {"xor": one}))
    [problem] = [p for p in engine.check() if p.severity == "error"]
    assert "f_yes ('Yes')" in problem.message and "f_no" not in problem.message
    assert problem.message.endswith("never the others: give it a condition that says when it is taken.")


def test_a_message_without_a_name_is_named_by_its_id(tmp_path: Path, make_engine: Callable[..., Engine]) -> None:
    xml = bpmn("nameless", '<bpmn:startEvent id="start"/><bpmn:intermediateCatchEvent id="wait">'
               '<bpmn:messageEventDefinition messageRef="m_reply"/></bpmn:intermediateCatchEvent>' + user("b")
               + '<bpmn:endEvent id="end"/>' + chain("start", "wait", "b", "end"))
    xml = xml.replace("<bpmn:process ", '<bpmn:message id="m_reply"/><bpmn:process ', 1)
    engine = make_engine(tier1_home(tmp_path / "home", {"nameless": xml}))
    assert [p for p in engine.check() if p.severity == "error"] == []
    run = engine.start("nameless", {}, actor="agent:a")
    assert ready(engine.message("m_reply", {}, {"text": "ok"}, actor="agent:mail")) == ["b"]
    assert engine.status(run.id).data["text"] == "ok"


def test_a_process_without_a_start_event_starts_at_its_activities_without_incoming_flows(
        tmp_path: Path, make_engine: Callable[..., Engine]) -> None:
    xml = bpmn("bare", user("work") + user("then") + '<bpmn:endEvent id="end"/>' + chain("work", "then", "end"))
    engine = make_engine(tier1_home(tmp_path / "home", {"bare": xml}))
    assert [p for p in engine.check() if p.severity == "error"] == []
    run = engine.start("bare", {}, actor="agent:a")
    assert ready(run) == ["work"]
    assert ready(engine.complete(run.id, "work", {}, actor="agent:a")) == ["then"]
    assert engine.complete(run.id, "then", {}, actor="agent:a").status == "completed"


def test_a_condition_out_of_an_activity_that_fails_names_the_activity_and_a_retry_mends_it(
        tmp_path: Path, make_engine: Callable[..., Engine]) -> None:
    engine = make_engine(tier1_home(tmp_path / "home", {"mini": INCLUSIVE}))
    run = engine.start("mini", {}, actor="agent:a")
    info = engine.complete(run.id, "a", {}, actor="agent:a")  # no x: `x > 1` cannot be evaluated
    assert info.status == "failed"
    failed = engine.log(run.id)[-1]
    assert (failed["event"], failed["step"], failed["detail"]["kind"]) == ("failed", "a", "userTask")
    assert "x" in failed["detail"]["error"] and "a__split" not in str(failed)
    info = engine.retry(run.id, "a", {"x": 7}, actor="human:alice")
    assert ready(info) == ["b", "c"]


def test_a_boundary_event_with_two_outgoing_flows_starts_both(tmp_path: Path,
                                                              make_engine: Callable[..., Engine]) -> None:
    boundary = ('<bpmn:boundaryEvent id="nudge" attachedToRef="work" cancelActivity="false">'
                '<bpmn:messageEventDefinition messageRef="m_nudge"/></bpmn:boundaryEvent>')
    xml = bpmn("nudged", '<bpmn:startEvent id="start"/>' + user("work") + boundary + user("call") + user("mail")
               + '<bpmn:endEvent id="end"/>' + chain("start", "work", "end") + flow("f_call", "nudge", "call")
               + flow("f_mail", "nudge", "mail") + chain("call", "end", prefix="g") + chain("mail", "end", prefix="h"))
    xml = xml.replace("<bpmn:process ", '<bpmn:message id="m_nudge" name="nudge"/><bpmn:process ', 1)
    engine = make_engine(tier1_home(tmp_path / "home", {"nudged": xml}))
    assert [p for p in engine.check() if p.severity == "error"] == []
    run = engine.start("nudged", {}, actor="agent:a")
    assert ready(engine.message("nudge", {}, {}, actor="agent:crm")) == ["call", "mail", "work"]
    for step in ("call", "mail"):
        engine.complete(run.id, step, {}, actor="agent:a")
    assert engine.complete(run.id, "work", {}, actor="agent:a").status == "completed"


def test_two_flows_into_a_subprocess_run_it_twice(tmp_path: Path, make_engine: Callable[..., Engine]) -> None:
    sub = ('<bpmn:subProcess id="sub"><bpmn:startEvent id="s1"/>' + user("x") + '<bpmn:endEvent id="e1"/>'
           + chain("s1", "x", "e1", prefix="s") + '</bpmn:subProcess>')
    xml = bpmn("subjoin", '<bpmn:startEvent id="start"/>' + user("a") + user("b") + user("c") + sub
               + '<bpmn:endEvent id="end"/>' + chain("start", "a") + flow("f_ab", "a", "b") + flow("f_ac", "a", "c")
               + flow("f_bs", "b", "sub") + flow("f_cs", "c", "sub") + chain("sub", "end"))
    engine = make_engine(tier1_home(tmp_path / "home", {"subjoin": xml}))
    run = engine.start("subjoin", {}, actor="agent:a")
    engine.complete(run.id, "a", {}, actor="agent:a")
    assert ready(engine.complete(run.id, "b", {}, actor="agent:a")) == ["c", "x"]
    assert ready(engine.complete(run.id, "c", {}, actor="agent:a")) == ["x"]
    assert engine.complete(run.id, "x", {}, actor="agent:a").status == "active"  # the second run of it waits
    assert engine.complete(run.id, "x", {}, actor="agent:a").status == "completed"


def test_check_reports_a_problem_of_an_implicit_split_at_the_drawn_flow(tmp_path: Path,
                                                                       make_engine: Callable[..., Engine]) -> None:
    body = INCLUSIVE.replace("x &gt; 5", "x &gt;&gt;&gt; 5").replace("<bpmn:sequenceFlow", "\n<bpmn:sequenceFlow")
    engine = make_engine(tier1_home(tmp_path / "home", {"mini": body}))
    [problem] = [p for p in engine.check() if p.severity == "error"]
    assert problem.line == body[:body.index('id="f_ac"')].count("\n") + 1
    assert problem.message.startswith("f_ac: condition: syntax error")
    assert (tmp_path / "home" / "processes" / "mini.bpmn").read_text(encoding="utf-8") == body  # never rewritten


def test_a_called_process_with_an_implicit_split_runs_both_branches(tmp_path: Path,
                                                                    make_engine: Callable[..., Engine]) -> None:
    called = bpmn("both-checks", '<bpmn:startEvent id="k_start"/>' + user("k_a") + user("k_b") + user("k_c")
                  + '<bpmn:endEvent id="k_end"/>' + chain("k_start", "k_a", prefix="k") + flow("k_ab", "k_a", "k_b")
                  + flow("k_ac", "k_a", "k_c") + chain("k_b", "k_end", prefix="kg") + chain("k_c", "k_end", prefix="kh"))
    caller = bpmn("caller", '<bpmn:startEvent id="start"/><bpmn:callActivity id="call" calledElement="both-checks"/>'
                  + user("after") + '<bpmn:endEvent id="end"/>' + chain("start", "call", "after", "end"))
    engine = make_engine(tier1_home(tmp_path / "home", {"caller": caller, "both-checks": called}))
    assert [p for p in engine.check() if p.severity == "error"] == []
    run = engine.start("caller", {}, actor="agent:a")
    assert ready(engine.complete(run.id, "k_a", {}, actor="agent:a")) == ["k_b", "k_c"]
    engine.complete(run.id, "k_b", {}, actor="agent:a")
    assert ready(engine.complete(run.id, "k_c", {}, actor="agent:a")) == ["after"]
    assert "k_a__split" not in str(engine.log(run.id))
