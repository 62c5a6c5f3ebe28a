"""A parallel gateway reached again by a loop: SpiffWorkflow's join waits for every incoming flow in the
first round and goes on with the loop's token in later ones, so tiergate runs these shapes to the end
(docs/tier1.md, *Gateways*); a second token on one incoming flow in the same round stays refused."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from tier1_helpers import bpmn, chain, flow, tier1_home, user

from tiergate.engine import Engine

COUNT = '<bpmn:scriptTask id="count"><bpmn:script>rounds = rounds + 1</bpmn:script></bpmn:scriptTask>'
START = ('<bpmn:startEvent id="start"/><bpmn:scriptTask id="init"><bpmn:script>rounds = 0</bpmn:script>'
         '</bpmn:scriptTask>')


def looped(target: str) -> str:
    """Start, a parallel split into a and b, their join, a count, and a loop back to ``target`` twice."""
    return bpmn("looped", START + '<bpmn:parallelGateway id="split"/>' + user("a") + user("b")
                + '<bpmn:parallelGateway id="join"/>' + COUNT
                + '<bpmn:exclusiveGateway id="again" default="f_end"/><bpmn:endEvent id="end"/>'
                + chain("start", "init", "split") + flow("f_sa", "split", "a") + flow("f_sb", "split", "b")
                + flow("f_aj", "a", "join") + flow("f_bj", "b", "join") + chain("join", "count", "again")
                + flow("f_back", "again", target, "rounds < 2") + flow("f_end", "again", "end"))


def ready(run) -> list[str]:  # type: ignore[no-untyped-def]
    return sorted(s.id for s in run.ready_steps)


def test_a_loop_back_into_the_parallel_split_runs_every_branch_each_round(
        tmp_path: Path, make_engine: Callable[..., Engine]) -> None:
    engine = make_engine(tier1_home(tmp_path / "home", {"looped": looped("split")}))
    assert [p.message for p in engine.check() if p.severity == "error"] == []
    run = engine.start("looped", {}, actor="human:alice")
    for round_ in (1, 2):
        assert ready(run) == ["a", "b"]
        run = engine.complete(run.id, "a", {}, actor="human:alice")
        assert ready(run) == ["b"]   # the join waits for b
        run = engine.complete(run.id, "b", {}, actor="human:alice")
        assert run.data["rounds"] == round_
    assert run.status == "completed"
    assert [e["step"] for e in engine.log(run.id) if e["event"] == "step_completed"] == ["a", "b", "a", "b"]


def test_a_loop_back_onto_one_branch_goes_on_through_the_join_with_that_branch(
        tmp_path: Path, make_engine: Callable[..., Engine]) -> None:
    engine = make_engine(tier1_home(tmp_path / "home", {"looped": looped("a")}))
    assert [p.message for p in engine.check() if p.severity == "error"] == []
    run = engine.start("looped", {}, actor="human:alice")
    assert ready(run) == ["a", "b"]
    run = engine.complete(run.id, "b", {}, actor="human:alice")
    assert ready(run) == ["a"]    # the first round waits for both
    run = engine.complete(run.id, "a", {}, actor="human:alice")
    assert (ready(run), run.data["rounds"]) == (["a"], 1)   # the loop comes back on a alone
    # Another engine on the same database restores the run from its stored state: the round is kept.
    again = make_engine(tmp_path / "home")
    run = again.complete(run.id, "a", {}, actor="human:alice")
    assert (run.status, run.data["rounds"]) == ("completed", 2)


def test_a_script_loop_through_a_parallel_gateway_runs_to_its_end(
        tmp_path: Path, make_engine: Callable[..., Engine]) -> None:
    # SpiffWorkflow's gateway_loop_input: the gateway that receives the start is the loop's head.
    body = ('<bpmn:startEvent id="start"/><bpmn:scriptTask id="set"><bpmn:script>x = 0</bpmn:script>'
            '</bpmn:scriptTask><bpmn:parallelGateway id="head"/><bpmn:scriptTask id="increment"><bpmn:script>'
            'x += 1</bpmn:script></bpmn:scriptTask><bpmn:exclusiveGateway id="more" default="f_last"/>'
            '<bpmn:task id="again"/>' + user("last") + '<bpmn:endEvent id="end"/>'
            + chain("start", "set", "head", "increment", "more") + flow("f_again", "more", "again", "x < 2")
            + flow("f_back", "again", "head") + flow("f_last", "more", "last") + chain("last", "end"))
    engine = make_engine(tier1_home(tmp_path / "home", {"looped": bpmn("looped", body)}))
    assert [p.message for p in engine.check() if p.severity == "error"] == []
    run = engine.start("looped", {}, actor="human:alice")
    assert (ready(run), run.data["x"]) == (["last"], 2)
    assert engine.complete(run.id, "last", {}, actor="human:alice").status == "completed"


def test_parallel_branches_merged_by_an_exclusive_gateway_into_a_looped_join_are_refused(
        tmp_path: Path, make_engine: Callable[..., Engine]) -> None:
    # SpiffWorkflow's parallel_join_dropped_parent: c1 and c2 each send a token through `merge_b`, so
    # the join sees a second token on one flow in one round (SpiffWorkflow 3.2 fails on it).
    body = (START + '<bpmn:parallelGateway id="split"/><bpmn:exclusiveGateway id="merge_a" default="f_aj"/>'
            + user("c1") + user("c2") + '<bpmn:exclusiveGateway id="merge_b" default="f_bj"/>'
            '<bpmn:parallelGateway id="join"/>' + COUNT + '<bpmn:exclusiveGateway id="again" default="f_end"/>'
            + user("retry") + '<bpmn:endEvent id="end"/>' + chain("start", "init", "split")
            + flow("f_sa", "split", "merge_a") + flow("f_s1", "split", "c1") + flow("f_s2", "split", "c2")
            + flow("f_1b", "c1", "merge_b") + flow("f_2b", "c2", "merge_b") + flow("f_aj", "merge_a", "join")
            + flow("f_bj", "merge_b", "join") + chain("join", "count", "again")
            + flow("f_retry", "again", "retry", "rounds < 3") + flow("f_back", "retry", "merge_a")
            + flow("f_end", "again", "end"))
    xml = bpmn("looped", body)
    engine = make_engine(tier1_home(tmp_path / "home", {"looped": xml}))
    errors = [(p.line, p.message) for p in engine.check() if p.severity == "error"]
    assert errors == [(xml[:xml.index('id="join"')].count("\n") + 1,
                       ("join: the parallel gateway is reached again by the loop through f_aj, and its incoming "
                       "flow f_bj comes from the exclusive gateway 'merge_b', which merges parallel branches of "
                       "'split': a second token reaches it in the same round, after the loop may have passed, "
                       "and SpiffWorkflow cannot join it. Join those branches with a parallel gateway before "
                       "they reach 'join'."))]
