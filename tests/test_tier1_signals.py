"""Tier 1 signals between runs: `tiergate signal` broadcasts, signal start events start runs, a throw in one
run reaches the others, and a loop of signal start processes stops at its budget."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from support import CLIResult
from tier1_helpers import bpmn, chain, tier1_home, user

from tiergate import doorlog, signals
from tiergate.engine import Engine
from tiergate.limits import limit

SIGNALS = ('<bpmn:signal id="sig_go" name="go_live"/><bpmn:signal id="sig_ping" name="ping"/>'
           '<bpmn:signal id="sig_none"/>')


def process(process_id: str, body: str) -> str:
    return bpmn(process_id, body).replace("<bpmn:process ", SIGNALS + "<bpmn:process ", 1)


def event(kind: str, element_id: str, signal: str = "sig_go", attrs: str = "") -> str:
    return (f'<bpmn:{kind} id="{element_id}" {attrs}><bpmn:signalEventDefinition signalRef="{signal}"/>'
            f'</bpmn:{kind}>')


#: Waits for go_live after its first step, then deploys.
WAITER = ('<bpmn:startEvent id="start"/>' + user("submit") + event("intermediateCatchEvent", "wait_go")
          + user("deploy") + '<bpmn:endEvent id="end"/>' + chain("start", "submit", "wait_go", "deploy", "end"))
#: Starts on go_live.
STARTER = (event("startEvent", "on_go") + user("prepare") + '<bpmn:endEvent id="end"/>'
           + chain("on_go", "prepare", "end"))
#: Throws go_live once approved.
THROWER = ('<bpmn:startEvent id="start"/>' + user("approve") + event("intermediateThrowEvent", "announce")
           + user("follow_up") + '<bpmn:endEvent id="end"/>'
           + chain("start", "approve", "announce", "follow_up", "end"))
#: Starts on ping and throws ping again at once: a loop that only the budget stops.
LOOP = (event("startEvent", "on_ping", "sig_ping") + event("intermediateThrowEvent", "again", "sig_ping")
        + user("look") + '<bpmn:endEvent id="end"/>' + chain("on_ping", "again", "look", "end"))


def engine_with(tmp_path: Path, make_engine: Callable[..., Engine], processes: dict[str, str]) -> Engine:
    engine = make_engine(tier1_home(tmp_path / "home", {pid: process(pid, body) for pid, body in processes.items()}))
    assert [p for p in engine.check() if p.severity == "error"] == []
    return engine


def received(engine: Engine, run_id: str) -> list[dict[str, Any]]:
    return [e["detail"] for e in engine.log(run_id) if e["event"] == "signal_received"]


def ready(engine: Engine, run_id: str) -> list[str]:
    return sorted(s.id for s in engine.status(run_id).ready_steps)


def test_one_signal_moves_every_run_waiting_and_starts_the_process_that_starts_on_it(
        tmp_path: Path, make_engine: Callable[..., Engine]) -> None:
    engine = engine_with(tmp_path, make_engine, {"waiter": WAITER, "starter": STARTER})
    first, second, early = (engine.start("waiter", {}, actor="agent:a") for _ in range(3))
    for run in (first, second):
        engine.complete(run.id, "submit", {}, actor="agent:a")
    answer = engine.signal("go_live", {"release": "R-7"}, actor="agent:ci")
    assert answer["reached"] == 3 and sorted(answer["moved"]) == sorted([first.id, second.id])
    [started] = answer["started"]
    for run_id in (first.id, second.id):
        assert ready(engine, run_id) == ["deploy"]
        [detail] = received(engine, run_id)
        assert (detail["signal"], detail["sender"], detail["data"]) == ("go_live", "agent:ci", {"release": "R-7"})
        assert engine.status(run_id).data["release"] == "R-7"
    assert ready(engine, early.id) == ["submit"] and received(engine, early.id) == []  # not waiting yet
    new = engine.status(started)
    assert (new.process, new.tier, new.started_by, ready(engine, started)) == ("starter", 1, "agent:ci", ["prepare"])
    assert [e["event"] for e in engine.log(started)][:4] == ["routed", "started", "signal_received", "step_ready"]
    assert engine.verify_log()["ok"] is True


def test_a_signal_thrown_in_one_run_moves_another_and_starts_a_run(
        tmp_path: Path, make_engine: Callable[..., Engine]) -> None:
    engine = engine_with(tmp_path, make_engine, {"waiter": WAITER, "starter": STARTER, "thrower": THROWER})
    waiting = engine.start("waiter", {}, actor="agent:a")
    engine.complete(waiting.id, "submit", {}, actor="agent:a")
    throwing = engine.start("thrower", {}, actor="agent:a")
    after = engine.complete(throwing.id, "approve", {}, actor="human:alice")
    assert [s.id for s in after.ready_steps] == ["follow_up"]
    [thrown] = [(e["step"], e["detail"]) for e in engine.log(throwing.id) if e["event"] == "signal_thrown"]
    assert thrown == ("announce", {"signal": "go_live", "broadcast": thrown[1]["broadcast"]})
    [sent] = signals.pending(engine, all_=True)["broadcasts"]   # the outbox's row: delivered after the commit
    assert (sent["broadcast"], sent["run"], sent["element"], sent["outcome"]["reached"]) == (
        thrown[1]["broadcast"], throwing.id, "announce", 2) and sent["delivered_at"] is not None
    assert signals.pending(engine)["pending"] == 0
    assert ready(engine, waiting.id) == ["deploy"]
    elements = engine.run_view(throwing.id, engine.described(engine.status(throwing.id)))["diagram"]["elements"]
    assert elements["announce"] == "finished"  # the run page shows the throw as run
    [detail] = received(engine, waiting.id)
    assert detail["sender"] == "human:alice" and detail["thrown_by"] == {"run": throwing.id, "element": "announce"}
    [started] = [r for r in engine.runs(process="starter")]
    assert received(engine, started["id"])[0]["thrown_by"]["run"] == throwing.id


def test_a_signal_that_reaches_nothing_answers_zero_and_is_recorded(
        tmp_path: Path, make_engine: Callable[..., Engine]) -> None:
    engine = engine_with(tmp_path, make_engine, {"waiter": WAITER})
    run = engine.start("waiter", {}, actor="agent:a")
    answer = engine.signal("nobody_listens", {}, actor="agent:ci")
    assert (answer["reached"], answer["moved"], answer["started"]) == (0, [], [])
    assert [(r["attempt"], r["code"], r["problem"], r["actor"]) for r in doorlog.entries(engine)] == [
        ("signal", "signal_unreached", "nobody_listens", "agent:ci")]
    assert ready(engine, run.id) == ["submit"] and received(engine, run.id) == []


def test_a_signal_start_process_that_throws_its_own_signal_stops_at_the_budget(
        tmp_path: Path, make_engine: Callable[..., Engine]) -> None:
    engine = engine_with(tmp_path, make_engine, {"loop": LOOP})
    answer = engine.signal("ping", {}, actor="agent:ci")
    assert answer["reached"] == 1
    runs = engine.runs(process="loop")
    assert len(runs) == limit("signal_depth")  # one per throw in a row, then no more
    refused = [(run["id"], e["detail"]) for run in runs for e in engine.log(run["id"]) if e["event"] == "refused"]
    assert len(refused) == 1 and refused[0][1]["reason"] == "signal_budget"
    assert "signal_depth" in refused[0][1]["message"] and "loops" in refused[0][1]["message"]
    assert all(ready(engine, run["id"]) == ["look"] for run in runs)
    assert engine.verify_log()["ok"] is True


def test_check_accepts_a_signal_start_event_that_names_a_signal_only(
        tmp_path: Path, make_engine: Callable[..., Engine]) -> None:
    nameless = event("startEvent", "on_what", "sig_none") + user("t") + '<bpmn:endEvent id="end"/>' + chain(
        "on_what", "t", "end")
    engine = make_engine(tier1_home(tmp_path / "home", {"nameless": process("nameless", nameless)}))
    [error] = [p for p in engine.check() if p.severity == "error"]
    assert error.message.startswith("on_what: the signal start event names no signal")
    problems = [p.message for p in make_engine(tier1_home(tmp_path / "miwg", miwg_c40_pools())).check()]
    assert problems and not [p for p in problems if "start event" in p or "signal" in p]


def test_tiergate_signal_from_the_command_line(tmp_path: Path, cli: Callable[..., CLIResult]) -> None:
    home = tier1_home(tmp_path / "home", {"waiter": process("waiter", WAITER), "starter": process("starter", STARTER)})
    runs = [cli("start", "waiter", "--actor", "agent:a", "--json", home=home.root).json["data"]["id"] for _ in range(2)]
    for run_id in runs:
        assert cli("complete", run_id, "submit", "--evidence", "{}", "--actor", "agent:a",
                   home=home.root).returncode == 0
    done = cli("signal", "go_live", "--data", json.dumps({"release": "R-1"}), "--actor", "agent:ci", "--json",
               home=home.root)
    assert done.returncode == 0, done
    assert sorted(done.json["data"]["moved"]) == sorted(runs) and len(done.json["data"]["started"]) == 1
    for run_id in runs:
        status = cli("status", run_id, "--json", home=home.root).json["data"]
        assert status["ready"] == ["deploy"]
    none = cli("signal", "nobody_listens", "--actor", "agent:ci", home=home.root)
    assert none.returncode == 0 and "reached 0 run(s)" in none.stdout
    bad = cli("signal", "go_live", "--data", "[1]", "--json", home=home.root)
    assert bad.returncode != 0 and bad.json["error"]["code"] == "invalid_data"
    long = cli("signal", "x" * 201, "--actor", "agent:ci", "--json", home=home.root)
    assert long.returncode != 0 and long.json["error"]["code"] == "usage" and "Traceback" not in long.stderr
    refusals = cli("log", "refusals", "--json", home=home.root).json["data"]
    assert [(r["door"], r["attempt"], r["code"], r["problem"]) for r in refusals][:2] == [  # newest first
        ("cli", "signal", "invalid_data", "not_an_object"), ("cli", "signal", "signal_unreached", "nobody_listens")]
    for run_id in runs:  # nothing moved by the refused ones
        assert [e["event"] for e in cli("log", run_id, "--json", home=home.root).json["data"]].count(
            "signal_received") == 1


def test_a_signal_reaches_a_boundary_event_and_an_event_subprocess_of_other_runs(
        tmp_path: Path, make_engine: Callable[..., Engine]) -> None:
    boundary = ('<bpmn:startEvent id="start"/>' + user("work")
                + event("boundaryEvent", "stopped", attrs='attachedToRef="work"')
                + user("wrap_up") + '<bpmn:endEvent id="end"/><bpmn:endEvent id="end2"/>'
                + chain("start", "work", "end") + chain("stopped", "wrap_up", "end2"))
    handler = ('<bpmn:startEvent id="start"/>' + user("work") + '<bpmn:endEvent id="end"/>'
               + chain("start", "work", "end")
               + '<bpmn:subProcess id="handler" triggeredByEvent="true">'
               + event("startEvent", "h_s", attrs='isInterrupting="false"') + user("notify")
               + '<bpmn:endEvent id="h_e"/>' + chain("h_s", "notify", "h_e", prefix="h") + '</bpmn:subProcess>')
    engine = engine_with(tmp_path, make_engine, {"boundary": boundary, "watched": handler})
    first = engine.start("boundary", {}, actor="agent:a")
    second = engine.start("watched", {}, actor="agent:a")
    answer = engine.signal("go_live", {}, actor="agent:ci")
    assert sorted(answer["moved"]) == sorted([first.id, second.id])
    assert ready(engine, first.id) == ["wrap_up"]  # the task the signal interrupted is skipped
    assert [e["step"] for e in engine.log(first.id) if e["event"] == "step_skipped"] == ["work"]
    assert ready(engine, second.id) == ["notify", "work"]  # non-interrupting: the work goes on beside it
    assert received(engine, second.id)[0]["elements"] == ["h_s"]


def miwg_c40_pools() -> dict[str, str]:
    """MIWG C.4.0's IT, payroll and facilities pools, each authored for tiergate's rules (executable, a slug id,
    a gate on each task, lanes a role), as its own process: each starts on the signal 'New employee hired'."""
    from lxml import etree

    bpmn_ns, camunda = "http://www.omg.org/spec/BPMN/20100524/MODEL", "http://camunda.org/schema/1.0/bpmn"
    pools = {"it": "_f0035388-f829-470c-b82b-0b15c3da3399", "payroll": "_da743a6f-d9e5-4fcf-8a96-d2fd5cfb73d4",
             "facilities": "_3486bf55-0a7f-4ff1-be15-1555669f58ad"}
    root = etree.fromstring((Path(__file__).parent / "data" / "bpmn-miwg" / "reference" / "C.4.0.bpmn").read_bytes())
    for element in root.iter(f"{{{bpmn_ns}}}process"):
        element.set("isExecutable", "true")
    for kind in ("userTask", "manualTask", "serviceTask"):
        for element in root.iter(f"{{{bpmn_ns}}}{kind}"):
            extensions = element.find(f"{{{bpmn_ns}}}extensionElements")
            if extensions is None:
                extensions = etree.Element(f"{{{bpmn_ns}}}extensionElements")
                element.insert(0, extensions)
            properties = etree.SubElement(extensions, f"{{{camunda}}}properties")
            etree.SubElement(properties, f"{{{camunda}}}property", name="gate", value=json.dumps({"type": "object"}))
    for lane in root.iter(f"{{{bpmn_ns}}}lane"):
        lane.set("name", "lead")
    text = etree.tostring(root, xml_declaration=True, encoding="UTF-8").decode()
    return {slug: text.replace(f'"{pool}"', f'"{slug}"') for slug, pool in pools.items()}


def test_miwg_c40_one_signal_starts_a_run_of_each_pool_that_starts_on_it(
        tmp_path: Path, make_engine: Callable[..., Engine]) -> None:
    pools = miwg_c40_pools()
    # Payroll's exclusive gateway has flows without conditions (docs/tier1.md): its start event is accepted.
    payroll = make_engine(tier1_home(tmp_path / "payroll", {"payroll": pools.pop("payroll")})).check()
    assert [p.message for p in payroll if p.severity == "error" and "exclusive gateway" not in p.message] == []
    engine = make_engine(tier1_home(tmp_path / "miwg", pools))
    assert [str(p) for p in engine.check() if p.severity == "error"] == []
    # Each start event writes the signal's "Employee Details" (its data output) to the pool's data store.
    details = {"_e96a6b5c-b24a-4221-8d35-cd3a4e68641e": "Ada L.", "_d367181e-c25a-407e-a5fb-817a27698a30": "Ada L."}
    answer = engine.signal("New employee hired", details, actor="agent:hr")
    assert answer["reached"] == 2 and answer["moved"] == []
    started = {engine.status(run_id).process: run_id for run_id in answer["started"]}
    assert sorted(started) == ["facilities", "it"]
    for run_id in started.values():
        assert [e["event"] for e in engine.log(run_id)] == [
            "routed", "started", "signal_received", "data_store_written", "step_ready"]
    assert [s.title for s in engine.status(started["it"]).ready_steps] == ["Create domain account"]


def test_a_signal_thrown_after_a_timer_fires_in_the_worker_reaches_the_other_runs(
        tmp_path: Path, make_engine: Callable[..., Engine]) -> None:
    from datetime import UTC, datetime, timedelta

    from tiergate.worker import run_pass

    t0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
    later = ('<bpmn:startEvent id="start"/><bpmn:intermediateCatchEvent id="wait_hour"><bpmn:timerEventDefinition>'
             '<bpmn:timeDuration>PT1H</bpmn:timeDuration></bpmn:timerEventDefinition></bpmn:intermediateCatchEvent>'
             + event("endEvent", "announce") + chain("start", "wait_hour", "announce"))
    engine = make_engine(tier1_home(tmp_path / "home", {"later": process("later", later),
                                                        "waiter": process("waiter", WAITER)}), clock=lambda: t0)
    waiting = engine.start("waiter", {}, actor="agent:a")
    engine.complete(waiting.id, "submit", {}, actor="agent:a")
    throwing = engine.start("later", {}, actor="agent:a")
    assert [f.run for f in run_pass(engine, now=t0 + timedelta(hours=2))] == [throwing.id]
    assert engine.status(throwing.id).status == "completed", engine.log(throwing.id)
    assert ready(engine, waiting.id) == ["deploy"], [(e["event"], e["step"]) for e in engine.log(throwing.id)]
    [detail] = received(engine, waiting.id)
    assert detail["sender"] == "system:tiergate" and detail["thrown_by"] == {"run": throwing.id, "element": "announce"}


def test_a_signal_end_event_throws_its_signal_inside_the_run(
        tmp_path: Path, make_engine: Callable[..., Engine]) -> None:
    """SpiffWorkflow 3.2 parses a signal end event as a none end event; tiergate reads its signal."""
    body = ('<bpmn:startEvent id="start"/><bpmn:parallelGateway id="split"/>' + user("go")
            + event("intermediateCatchEvent", "heard") + user("after") + event("endEvent", "shout")
            + '<bpmn:endEvent id="end"/>' + chain("start", "split") + chain("split", "go", "shout")
            + chain("split", "heard", "after", "end", prefix="g"))
    engine = engine_with(tmp_path, make_engine, {"inner": body})
    run = engine.start("inner", {}, actor="agent:a")
    assert ready(engine, run.id) == ["go"]
    assert [s.id for s in engine.complete(run.id, "go", {}, actor="agent:a").ready_steps] == ["after"]
