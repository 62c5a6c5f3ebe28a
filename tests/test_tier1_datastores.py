"""Tier 1 BPMN data stores: a value the runs of a process share, kept in the database (tiergate.datastores)."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text
from support import CORPUS
from tier1_helpers import bpmn, chain, props, tier1_home, user

from tiergate.datastores import StoreAccess
from tiergate.engine import Engine
from tiergate.errors import ConflictError, LimitExceededError, RefusedError, StaleReadError
from tiergate.worker import run_pass

STORE = '<bpmn:dataStore id="counter" name="Run&#10;counter"/>'


def with_store(process_id: str, body: str, stores: str = STORE) -> str:
    """A process whose definitions declare ``stores`` (data stores are root elements, beside the process)."""
    return bpmn(process_id, body).replace("<bpmn:process ", stores + "<bpmn:process ", 1)


def reads(ref: str) -> str:
    return f'<bpmn:dataInputAssociation id="in_{ref}_{{task}}"><bpmn:sourceRef>{ref}</bpmn:sourceRef></bpmn:dataInputAssociation>'


def writes(ref: str) -> str:
    return f'<bpmn:dataOutputAssociation id="out_{ref}_{{task}}"><bpmn:targetRef>{ref}</bpmn:targetRef></bpmn:dataOutputAssociation>'


def script(task_id: str, text: str, *associations: str) -> str:
    links = "".join(a.replace("{task}", task_id) for a in associations)
    return f'<bpmn:scriptTask id="{task_id}">{links}<bpmn:script>{text}</bpmn:script></bpmn:scriptTask>'


def step(task_id: str, *associations: str) -> str:
    links = "".join(a.replace("{task}", task_id) for a in associations)
    return user(task_id).replace("</bpmn:userTask>", links + "</bpmn:userTask>")


#: A script task bumps the counter (it reads and writes the store); a person then sees it and may set it.
COUNTING = with_store("counting", (
    '<bpmn:dataStoreReference id="counter_ref" dataStoreRef="counter"/>'
    '<bpmn:startEvent id="start"/>'
    + script("bump", "counter = (counter or 0) + 1\nseen = counter", reads("counter_ref"), writes("counter_ref"))
    + step("review", reads("counter_ref"), writes("counter_ref"))
    + '<bpmn:endEvent id="end"/>' + chain("start", "bump", "review", "end")))


def engine_for(tmp_path: Path, make_engine: Callable[..., Engine], processes: dict[str, str]) -> Engine:
    engine = make_engine(tier1_home(tmp_path / "home", processes))
    assert [str(p) for p in engine.check() if p.severity == "error"] == []
    return engine


def digest(value: object) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def test_a_value_written_by_one_run_is_read_by_the_next(tmp_path: Path, make_engine: Callable[..., Engine]) -> None:
    engine = engine_for(tmp_path, make_engine, {"counting": COUNTING})
    first = engine.start("counting", {}, actor="agent:a")
    # Never written: the script read None, and wrote 1; the step reads the store's value when it becomes ready.
    assert first.data["seen"] == 1 and first.data["counter"] == 1
    second = engine.start("counting", {}, actor="agent:a")
    assert second.data["seen"] == 2
    # `first`'s step read the counter at 1; `second` has moved it on since: completing it is refused, and the
    # step then shows 2. Completed on that, the data output association writes the value given.
    with pytest.raises(StaleReadError):
        engine.complete(first.id, "review", {"counter": 10}, actor="agent:a")
    assert engine.status(first.id).data["counter"] == 2
    engine.complete(first.id, "review", {"counter": 10}, actor="agent:a")
    third = engine.start("counting", {}, actor="agent:a")
    assert third.data["seen"] == 11
    written = [e for e in engine.log(third.id) if e["event"] == "data_store_written"]
    assert [(e["step"], e["actor"], e["detail"]["store"], e["detail"]["version"], e["detail"]["digest"])
            for e in written] == [("bump", "system:tiergate", "counter", 4, digest(11))]
    assert written[0]["detail"]["name"] == "Run counter" and written[0]["detail"]["process"] == "counting"
    shown = engine.data_stores("counting")
    assert [(s["store"], s["value"], s["version"], s["run"], s["step"]) for s in shown] == [
        ("counter", 11, 4, third.id, "bump")]
    assert engine.verify_log()["ok"] is True


REVIEWING = with_store("reviewing", (
    '<bpmn:dataStoreReference id="counter_ref" dataStoreRef="counter"/><bpmn:startEvent id="start"/>'
    + step("review", reads("counter_ref"), writes("counter_ref")) + '<bpmn:endEvent id="end"/>'
    + chain("start", "review", "end")))


def test_a_store_never_written_reads_null_and_a_completion_from_a_stale_read_is_refused(
        tmp_path: Path, make_engine: Callable[..., Engine]) -> None:
    engine = engine_for(tmp_path, make_engine, {"reviewing": REVIEWING})
    first, second = (engine.start("reviewing", {}, actor="agent:a") for _ in range(2))
    assert first.data == {"counter": None} and engine.data_stores() == []  # reading writes nothing
    engine.complete(second.id, "review", {"counter": {"total": 1}}, actor="agent:a")
    # `first` read the store (never written) when its step became ready; `second` wrote it since. Completing
    # `first` would overwrite that update with a value decided on the old one: refused, nothing written.
    log_before = len(engine.log(first.id))
    with pytest.raises(StaleReadError) as refused:
        engine.complete(first.id, "review", {"counter": {"total": 5}}, actor="human:alice")
    err = refused.value
    assert err.code == "data_store_stale" and isinstance(err, ConflictError)
    assert "data store 'counter' (Run counter) was written by run " + second.id in err.message
    assert "version 0, now 1" in err.message and "now shows the store's current value" in err.message
    [changed] = err.details["stores"]
    assert (changed["store"], changed["read_version"], changed["version"], changed["written_by_run"],
            changed["written_at_step"]) == ("counter", 0, 1, second.id, "review")
    assert [s["value"] for s in engine.data_stores("reviewing")] == [{"total": 1}]   # the store as it was
    status = engine.status(first.id)
    assert status.status == "active" and [s.id for s in status.ready_steps] == ["review"]
    assert status.data == {"counter": {"total": 1}}         # the step now shows the store's current value
    entries = engine.log(first.id)[log_before:]
    assert [e["event"] for e in entries] == ["refused"]
    assert (entries[0]["actor"], entries[0]["step"], entries[0]["detail"]["reason"],
            entries[0]["detail"]["evidence"]) == ("human:alice", "review", "data_store_stale",
                                                  {"counter": {"total": 5}})
    assert entries[0]["detail"]["stores"][0]["version"] == 1
    # Completed again on what it now shows: written, on top of the other run's update.
    done = engine.complete(first.id, "review", {"counter": {"total": 6}}, actor="human:alice")
    assert done.status == "completed" and "counter" not in done.data  # written to the store, not kept in the run
    entry = next(e for e in engine.log(first.id) if e["event"] == "data_store_written")
    assert (entry["detail"]["read_version"], entry["detail"]["previous"], entry["detail"]["version"]) == (1, 1, 2)
    assert "stale_read" not in entry["detail"]
    assert [s["value"] for s in engine.data_stores("reviewing")] == [{"total": 6}]
    assert engine.data_stores("other") == []
    assert engine.verify_log()["ok"] is True


def test_a_stale_step_claimed_by_another_is_refused_for_the_claim_and_left_as_it_was(
        tmp_path: Path, make_engine: Callable[..., Engine]) -> None:
    engine = engine_for(tmp_path, make_engine, {"reviewing": REVIEWING})
    first, second = (engine.start("reviewing", {}, actor="agent:a") for _ in range(2))
    engine.claim(first.id, "review", actor="agent:b")
    engine.complete(second.id, "review", {"counter": 1}, actor="agent:a")
    with pytest.raises(RefusedError) as refused:   # not the claimant: told so, and the step is not touched
        engine.complete(first.id, "review", {"counter": 5}, actor="agent:c")
    assert refused.value.reason == "claimed_by_other"
    assert engine.status(first.id).data == {"counter": None}
    with pytest.raises(StaleReadError):             # the claimant: the step's read is stale
        engine.complete(first.id, "review", {"counter": 5}, actor="agent:b")
    assert engine.status(first.id).data == {"counter": 1}
    assert engine.complete(first.id, "review", {"counter": 2}, actor="agent:b").status == "completed"
    assert [s["value"] for s in engine.data_stores("reviewing")] == [2]


def test_skipping_a_step_that_would_write_back_a_stale_read_is_refused_too(
        tmp_path: Path, make_engine: Callable[..., Engine]) -> None:
    """A skipped step's output association writes what the step read: from a stale read that would undo
    the other run's update."""
    links = (reads("counter_ref") + writes("counter_ref")).replace("{task}", "review")
    optional = user("review", optional="true").replace("</bpmn:userTask>", links + "</bpmn:userTask>")
    process = with_store("skipping", '<bpmn:dataStoreReference id="counter_ref" dataStoreRef="counter"/>'
                         '<bpmn:startEvent id="start"/>' + optional + '<bpmn:endEvent id="end"/>'
                         + chain("start", "review", "end"))
    engine = engine_for(tmp_path, make_engine, {"skipping": process})
    first, second = (engine.start("skipping", {}, actor="agent:a") for _ in range(2))
    engine.complete(second.id, "review", {"counter": 7}, actor="agent:a")
    with pytest.raises(StaleReadError):
        engine.skip(first.id, "review", "not needed", actor="agent:a")
    assert [s["value"] for s in engine.data_stores("skipping")] == [7]
    assert engine.skip(first.id, "review", "not needed", actor="agent:a").status == "completed"
    assert [(s["value"], s["version"]) for s in engine.data_stores("skipping")] == [(7, 2)]  # written back as read


def test_a_stale_completion_through_the_cli_says_data_store_stale(
        tmp_path: Path, make_engine: Callable[..., Engine], cli: Callable[..., Any]) -> None:
    engine = engine_for(tmp_path, make_engine, {"reviewing": REVIEWING})
    first, second = (engine.start("reviewing", {}, actor="agent:a") for _ in range(2))
    engine.complete(second.id, "review", {"counter": 1}, actor="agent:a")
    engine.close()
    answer = cli("complete", first.id, "review", "--evidence", '{"counter": 5}', "--actor", "human:alice", "--json",
                 home=tmp_path / "home")
    assert answer.returncode == 1 and "Traceback" not in answer.stderr, answer
    assert answer.json["error"]["code"] == "data_store_stale"
    assert answer.json["error"]["details"]["stores"][0]["written_by_run"] == second.id
    shown = cli("status", first.id, "--json", home=tmp_path / "home")
    assert shown.json["data"]["data"] == {"counter": 1}
    again = cli("complete", first.id, "review", "--evidence", '{"counter": 6}', "--actor", "human:alice", "--json",
                home=tmp_path / "home")
    assert again.returncode == 0, again
    assert [s["value"] for s in cli("stores", "--json", home=tmp_path / "home").json["data"]] == [6]


def test_a_message_s_write_is_judged_on_the_store_as_the_message_arrives(
        tmp_path: Path, make_engine: Callable[..., Engine]) -> None:
    """No one is refused a message: its receive task reads the store when the message arrives, in the move
    that writes it, so another run's write before that is seen (a compare-and-set, not a stale read)."""
    receive = ('<bpmn:receiveTask id="await_reply" messageRef="m_reply">'
               + props(correlate="ticket") + reads("counter_ref").replace("{task}", "await_reply")
               + writes("counter_ref").replace("{task}", "await_reply") + '</bpmn:receiveTask>')
    process = with_store("awaiting", '<bpmn:dataStoreReference id="counter_ref" dataStoreRef="counter"/>'
                         '<bpmn:startEvent id="start"/>' + receive + '<bpmn:endEvent id="end"/>'
                         + chain("start", "await_reply", "end")).replace(
        "<bpmn:process ", '<bpmn:message id="m_reply" name="client_reply"/><bpmn:process ', 1)
    engine = engine_for(tmp_path, make_engine, {"awaiting": process})
    early, late = (engine.start("awaiting", {"ticket": t}, actor="agent:a") for t in ("T-1", "T-2"))
    engine.message("client_reply", {"ticket": "T-2"}, {"counter": 1}, actor="agent:ci")
    done = engine.message("client_reply", {"ticket": "T-1"}, {"counter": 5}, actor="agent:ci")
    assert done.status == "completed"
    entry = next(e for e in engine.log(early.id) if e["event"] == "data_store_written")
    assert (entry["detail"]["read_version"], entry["detail"]["previous"], entry["detail"]["version"]) == (1, 1, 2)
    assert "stale_read" not in entry["detail"]
    fresh = next(e for e in engine.log(late.id) if e["event"] == "data_store_written")
    assert "stale_read" not in fresh["detail"]
    assert [s["value"] for s in engine.data_stores("awaiting")] == [5]


SETTING = with_store("setting", (
    '<bpmn:dataStoreReference id="counter_ref" dataStoreRef="counter"/><bpmn:startEvent id="start"/>'
    + step("set", writes("counter_ref"))
    + script("grow", 'counter = "x" * 90000\ncounter = [counter, counter, counter] if grow else counter',
             reads("counter_ref"), writes("counter_ref"))
    + user("after") + '<bpmn:endEvent id="end"/>' + chain("start", "set", "grow", "after", "end")))


def test_a_write_is_kept_only_with_the_move_that_made_it(tmp_path: Path, make_engine: Callable[..., Engine]) -> None:
    home = tier1_home(tmp_path / "home", {"setting": SETTING})
    engine, other = make_engine(home), make_engine(home)
    run = engine.start("setting", {"grow": False}, actor="agent:a")
    # Another engine (another server process) completes the step first; this engine's attempt is computed on
    # the run as it remembered it, wrote the store, and its save found the run changed: all of it is rolled
    # back, and the attempt judged again on the run as it is (the step is done).
    other.complete(run.id, "set", {"counter": 5}, actor="agent:a")
    with pytest.raises(RefusedError):
        engine.complete(run.id, "set", {"counter": 7}, actor="agent:a")
    assert [(s["value"], s["version"]) for s in engine.data_stores("setting")] == [("x" * 90000, 2)]
    assert [e["detail"]["version"] for e in engine.log(run.id) if e["event"] == "data_store_written"] == [1, 2]

    # A move whose value goes over the evidence size limit is refused: nothing of it is written.
    big = engine.start("setting", {"grow": True}, actor="agent:a")
    with pytest.raises(LimitExceededError) as refused:
        engine.complete(big.id, "set", {"counter": 1}, actor="agent:a")
    assert refused.value.details["limit"] == "evidence_bytes" and "data store 'counter'" in refused.value.message
    assert [(s["value"], s["version"]) for s in engine.data_stores("setting")] == [("x" * 90000, 2)]
    assert [e["event"] for e in engine.log(big.id)][-1] == "refused"
    assert not [e for e in engine.log(big.id) if e["event"] == "data_store_written"]
    assert engine.verify_log()["ok"] is True


BUMPING = with_store("bumping", (
    '<bpmn:dataStoreReference id="counter_ref" dataStoreRef="counter"/><bpmn:startEvent id="start"/>'
    + user("take") + script("bump", "counter = (counter or 0) + 1", reads("counter_ref"), writes("counter_ref"))
    + '<bpmn:endEvent id="end"/>' + chain("start", "take", "bump", "end")))


def test_runs_bumping_one_store_at_once_lose_no_update(tmp_path: Path, make_engine: Callable[..., Engine]) -> None:
    home = tier1_home(tmp_path / "home", {"bumping": BUMPING})
    engine, other = make_engine(home), make_engine(home)
    real = engine._stores

    def interleaved(process_id: str, run_id: str) -> StoreAccess:
        """Between this engine's read of the store and its write, the other engine's run bumps it (once)."""
        access = real(process_id, run_id)
        read = access._reader

        def reader(process: str, store: str) -> object:
            found = read(process, store)
            if pending:
                other.complete(pending.pop(), "take", {}, actor="agent:b")
            return found
        access._reader = reader
        return access

    engine._stores = interleaved  # type: ignore[method-assign]
    for round_ in range(2):  # first the store's first row (an insert), then its update
        mine = engine.start("bumping", {}, actor="agent:a")
        pending = [other.start("bumping", {}, actor="agent:b").id]
        engine.complete(mine.id, "take", {}, actor="agent:a")
        values = engine.data_stores("bumping")
        assert [(s["value"], s["version"], s["run"]) for s in values] == [(2 * round_ + 2, 2 * round_ + 2, mine.id)]
        # The move was computed again on the other run's value: each run's one write is in its log.
        entry = [e for e in engine.log(mine.id) if e["event"] == "data_store_written"]
        assert [(e["detail"]["previous"], e["detail"]["version"]) for e in entry] == [(2 * round_ + 1, 2 * round_ + 2)]


def test_a_timer_fired_by_the_worker_writes_the_store_with_its_move(
        tmp_path: Path, make_engine: Callable[..., Engine]) -> None:
    process = with_store("waiting", (
        '<bpmn:dataStoreReference id="counter_ref" dataStoreRef="counter"/><bpmn:startEvent id="start"/>'
        '<bpmn:intermediateCatchEvent id="wait"><bpmn:timerEventDefinition id="wait_t">'
        '<bpmn:timeDuration>PT1H</bpmn:timeDuration></bpmn:timerEventDefinition></bpmn:intermediateCatchEvent>'
        + script("bump", "counter = (counter or 0) + 1", reads("counter_ref"), writes("counter_ref"))
        + user("after") + '<bpmn:endEvent id="end"/>' + chain("start", "wait", "bump", "after", "end")))
    engine = engine_for(tmp_path, make_engine, {"waiting": process})
    runs = [engine.start("waiting", {}, actor="agent:a") for _ in range(2)]
    fired = run_pass(engine, now=datetime.now(timezone.utc) + timedelta(hours=2))
    assert sorted(f.run for f in fired) == sorted(r.id for r in runs) and not [f for f in fired if f.error]
    assert [(s["value"], s["version"]) for s in engine.data_stores("waiting")] == [(2, 2)]
    assert sorted(e["detail"]["version"] for r in runs for e in engine.log(r.id)
                  if e["event"] == "data_store_written") == [1, 2]


def test_check_refuses_a_data_store_reference_that_names_no_store(
        tmp_path: Path, make_engine: Callable[..., Engine]) -> None:
    process = with_store("broken", (
        '<bpmn:dataStoreReference id="nowhere"/><bpmn:dataStoreReference id="elsewhere" dataStoreRef="ledger"/>'
        '<bpmn:startEvent id="start"/>' + step("review", reads("nowhere"), writes("elsewhere"))
        + '<bpmn:endEvent id="end"/>' + chain("start", "review", "end")))
    engine = make_engine(tier1_home(tmp_path / "home", {"broken": process}))
    problems = [str(p) for p in engine.check() if p.severity == "error"]
    assert any("nowhere: this data store reference names no data store (dataStoreRef)" in p for p in problems)
    assert any("elsewhere: dataStoreRef 'ledger' is not a data store of this file" in p for p in problems)
    long_id = "s" * 256
    process = with_store("long", f'<bpmn:dataStoreReference id="r" dataStoreRef="{long_id}"/><bpmn:startEvent id="start"/>'
                         + step("review", reads("r")) + '<bpmn:endEvent id="end"/>' + chain("start", "review", "end"),
                         stores=f'<bpmn:dataStore id="{long_id}"/>')
    engine = make_engine(tier1_home(tmp_path / "long", {"long": process}))
    assert [p.message for p in engine.check() if p.severity == "error"] == [
        f"{long_id[:40]}: a data store's id and name may have at most 255 characters (its key in the database). "
        "Shorten them."]


def test_an_association_to_the_tasks_data_input_or_output_carries_the_value(
        tmp_path: Path, make_engine: Callable[..., Engine]) -> None:
    """As MIWG C.4.0 and C.5.0 draw it: the store is linked to a data output (or input) of the task's
    ioSpecification, which names the field; without one, the field is the store's id (SpiffWorkflow's way)."""
    io = ('<bpmn:ioSpecification id="io_{t}">{items}<bpmn:inputSet id="is_{t}">{ins}</bpmn:inputSet>'
          '<bpmn:outputSet id="os_{t}">{outs}</bpmn:outputSet></bpmn:ioSpecification>')
    record = user("record").replace("</bpmn:extensionElements>", "</bpmn:extensionElements>" + io.format(
        t="record", items='<bpmn:dataOutput id="employee" name="Employee details"/>', ins="",
        outs="<bpmn:dataOutputRefs>employee</bpmn:dataOutputRefs>")).replace("</bpmn:userTask>", (
            '<bpmn:dataOutputAssociation id="rec_out"><bpmn:sourceRef>employee</bpmn:sourceRef>'
            '<bpmn:targetRef>details_ref</bpmn:targetRef></bpmn:dataOutputAssociation>'
            '<bpmn:dataOutputAssociation id="rec_obj"><bpmn:sourceRef>employee</bpmn:sourceRef>'
            '<bpmn:targetRef>copy_ref</bpmn:targetRef></bpmn:dataOutputAssociation></bpmn:userTask>'))
    payroll = ('<bpmn:scriptTask id="payroll">' + io.format(
        t="payroll", items='<bpmn:dataInput id="who"/><bpmn:dataOutput id="line"/>',
        ins="<bpmn:dataInputRefs>who</bpmn:dataInputRefs>", outs="<bpmn:dataOutputRefs>line</bpmn:dataOutputRefs>")
        + '<bpmn:dataInputAssociation id="pay_in"><bpmn:sourceRef>details_ref</bpmn:sourceRef>'
        '<bpmn:targetRef>who</bpmn:targetRef></bpmn:dataInputAssociation>'
        '<bpmn:script>line = who["name"] + " on payroll"</bpmn:script></bpmn:scriptTask>')
    process = with_store("onboarding", (
        '<bpmn:dataStoreReference id="details_ref" dataStoreRef="details"/>'
        '<bpmn:dataObject id="copy"/><bpmn:dataObjectReference id="copy_ref" dataObjectRef="copy"/>'
        '<bpmn:startEvent id="start"/>' + record + payroll + user("after") + '<bpmn:endEvent id="end"/>'
        + chain("start", "record", "payroll", "after", "end")),
        stores='<bpmn:dataStore id="details" name="Employee Details"/>')
    engine = engine_for(tmp_path, make_engine, {"onboarding": process})
    run = engine.start("onboarding", {}, actor="agent:a")
    done = engine.complete(run.id, "record", {"employee": {"name": "Ada"}}, actor="agent:a")
    # The data output `employee` went to the store and to the data object; the payroll task's data input
    # `who` got the store's value, and only its output goes on (its ioSpecification).
    assert (done.status, done.data) == ("active", {"line": "Ada on payroll"}), engine.log(run.id)[-1]
    assert [(s["store"], s["name"], s["value"]) for s in engine.data_stores("onboarding")] == [
        ("details", "Employee Details", {"name": "Ada"})]
    finished = engine.complete(run.id, "after", {}, actor="agent:a")
    assert finished.data["data_objects"] == {"copy": {"name": "Ada"}}


def test_an_unnamed_message_is_named_by_its_id(tmp_path: Path, make_engine: Callable[..., Engine]) -> None:
    """MIWG B.1.0's `<message id="..."/>` has no name: SpiffWorkflow 3.2 failed on its start event with a TypeError."""
    process = bpmn("greeted", '<bpmn:startEvent id="start"><bpmn:messageEventDefinition id="m_def" '
                   'messageRef="hello"/></bpmn:startEvent>' + user("answer") + '<bpmn:endEvent id="end"/>'
                   + chain("start", "answer", "end")).replace("<bpmn:process ", '<bpmn:message id="hello"/><bpmn:process ', 1)
    engine = engine_for(tmp_path, make_engine, {"greeted": process})
    run = engine.message("hello", {}, {"text": "hi"}, actor="agent:a")
    assert [s.id for s in run.ready_steps] == ["answer"]


def test_check_warns_when_a_step_writes_a_store_its_gate_does_not_require(
        tmp_path: Path, make_engine: Callable[..., Engine]) -> None:
    engine = make_engine(tier1_home(tmp_path / "home", {"setting": SETTING, "counting": COUNTING}))
    warnings = [str(p) for p in engine.check() if p.severity == "warning" and "data store" in str(p)]
    # `set` only writes the store: a completion without `counter` fails the run; `review` (COUNTING) reads it first.
    assert len(warnings) == 1 and "set: it writes the data store 'counter', which its gate does not require" in warnings[0]


def test_stores_command_shows_each_store(tmp_path: Path, make_engine: Callable[..., Engine], cli: Callable[..., Any]) -> None:
    engine = engine_for(tmp_path, make_engine, {"counting": COUNTING})
    run = engine.start("counting", {}, actor="agent:a")
    answer = cli("stores", "counting", "--json", home=tmp_path / "home")
    assert answer.returncode == 0, answer.stderr
    data = json.loads(answer.stdout)["data"]
    assert [(s["process"], s["store"], s["name"], s["value"], s["version"], s["run"], s["step"], s["digest"])
            for s in data] == [("counting", "counter", "Run counter", 1, 1, run.id, "bump", digest(1))]
    shown = cli("stores", home=tmp_path / "home")
    assert shown.returncode == 0 and "counter (Run counter)" in shown.stdout and run.id in shown.stdout
    assert data[0]["updated_at"].endswith("Z")
    assert json.loads(cli("stores", "other", "--json", home=tmp_path / "home").stdout) == {"ok": True, "data": []}


def test_log_verify_names_a_store_edited_in_the_database(tmp_path: Path, make_engine: Callable[..., Engine],
                                                          cli: Callable[..., Any]) -> None:
    engine = engine_for(tmp_path, make_engine, {"counting": COUNTING})
    engine.start("counting", {}, actor="agent:a")
    assert engine.verify_log()["ok"] is True
    with engine.db.write() as conn:  # someone with the database's password sets the counter back
        conn.execute(text("UPDATE data_stores SET value = '0', version = 1"))
    result = engine.verify_log()
    assert result["ok"] is False and result["data_stores_tampered"] == [
        {"process": "counting", "store": "counter",
         "problem": "its value does not hash to its digest (edited in the database)"}]
    answer = cli("log", "verify", "--json", home=tmp_path / "home")
    assert answer.returncode == 1 and answer.json["error"]["code"] == "log_tampered"
    with engine.db.write() as conn:  # ... and its digest too: the log's last write of it says otherwise
        conn.execute(text("UPDATE data_stores SET digest = :d"), {"d": digest(0)})
    assert engine.verify_log()["data_stores_tampered"][0]["problem"] == (
        "its value is not the one the log's last write of it wrote")
    with engine.db.write() as conn:
        conn.execute(text("DELETE FROM data_stores"))
    assert engine.verify_log()["data_stores_tampered"][0]["problem"] == "the log wrote it, but its row is gone"


def test_a_called_process_uses_the_stores_of_the_process_of_its_run(
        tmp_path: Path, make_engine: Callable[..., Engine]) -> None:
    tally = '<bpmn:dataStore id="tally" name="Tally"/>'
    callee = with_store("counted", (
        '<bpmn:dataStoreReference id="tally_ref" dataStoreRef="tally"/><bpmn:startEvent id="c_start"/>'
        + script("c_bump", "tally = (tally or 0) + 1", reads("tally_ref"), writes("tally_ref"))
        + '<bpmn:endEvent id="c_end"/>' + chain("c_start", "c_bump", "c_end", prefix="c")), stores=tally)
    caller = bpmn("calling", '<bpmn:startEvent id="start"/><bpmn:callActivity id="call" calledElement="counted"/>'
                  + user("after") + '<bpmn:endEvent id="end"/>' + chain("start", "call", "after", "end"))
    engine = engine_for(tmp_path, make_engine, {"calling": caller, "counted": callee})
    engine.start("calling", {}, actor="agent:a")
    engine.start("calling", {}, actor="agent:a")
    engine.start("counted", {}, actor="agent:a")
    # Scoped by the run's process: the two calling runs share one tally, the run of `counted` has its own.
    assert [(s["process"], s["store"], s["value"]) for s in engine.data_stores()] == [
        ("calling", "tally", 2), ("counted", "tally", 1)]


def test_a_step_that_fails_after_writing_keeps_no_write(tmp_path: Path, make_engine: Callable[..., Engine]) -> None:
    """Its second data output (a data object) is missing: the step fails, so its first (the store) is not made."""
    process = with_store("noting", (
        '<bpmn:dataStoreReference id="counter_ref" dataStoreRef="counter"/>'
        '<bpmn:dataObject id="note"/><bpmn:dataObjectReference id="note_ref" dataObjectRef="note"/>'
        '<bpmn:startEvent id="start"/>' + step("record", writes("counter_ref"), writes("note_ref"))
        + user("after") + '<bpmn:endEvent id="end"/>' + chain("start", "record", "after", "end")))
    engine = engine_for(tmp_path, make_engine, {"noting": process})
    run = engine.start("noting", {}, actor="agent:a")
    failed = engine.complete(run.id, "record", {"counter": 3}, actor="agent:a")
    assert failed.status == "failed" and engine.data_stores() == []
    assert not [e for e in engine.log(run.id) if e["event"] == "data_store_written"]
    # The retry completes the step again, with the value its evidence gave the store.
    retried = engine.retry(run.id, "record", {"note": "seen"}, actor="human:alice")
    assert [s.id for s in retried.ready_steps] == ["after"]
    assert [(s["value"], s["version"]) for s in engine.data_stores("noting")] == [(3, 1)]
    assert [e["detail"]["version"] for e in engine.log(run.id) if e["event"] == "data_store_written"] == [1]
    assert engine.verify_log()["ok"] is True


@pytest.mark.parametrize("model", ["B.1.0", "C.1.1", "C.4.0", "C.5.0"])
def test_the_miwg_models_with_data_stores_are_not_refused_for_them(
        tmp_path: Path, make_engine: Callable[..., Engine], model: str) -> None:
    """Each pool that reads or writes a store, checked as the catalog's process, is refused (if it is) for other
    reasons (docs/tier1.md, *Outside processes*), never for a data store."""
    text = (CORPUS / "bpmn-miwg" / "reference" / f"{model}.bpmn").read_text(encoding="utf-8")
    assert "dataStore" in text
    found = list(re.finditer(r'<(?:\w+:)?process\b[^>]*?\bid="([^"]+)"', text))
    pools = [one.group(1) for one in found if "dataStoreReference" in text[one.start():text.find("process>", one.end())]]
    pools = pools or [one.group(1) for one in found]  # (C.1.1 declares a store that no pool references)
    assert pools
    for number, pool in enumerate(pools):
        home = tier1_home(tmp_path / f"home{number}", {"model": text.replace(f'"{pool}"', '"model"')})
        problems = [str(p) for p in make_engine(home).check()]
        assert not [p for p in problems if "no process" in p.lower()], problems  # the pool itself was checked
        assert not [p for p in problems if "data store" in p.lower() or "datastore" in p.lower()], problems



SHARING = with_store("sharing", (
    '<bpmn:dataStoreReference id="counter_ref" dataStoreRef="counter"/><bpmn:startEvent id="start"/>'
    + script("bump", "counter = (counter or 0) + 1\nshare = 12 // parts", reads("counter_ref"), writes("counter_ref"))
    + user("after") + '<bpmn:endEvent id="end"/>' + chain("start", "bump", "after", "end")))


def test_a_retried_element_reads_its_stores_again_and_never_writes_from_its_old_read(
        tmp_path: Path, make_engine: Callable[..., Engine]) -> None:
    """A script that read the store and failed, retried after another run wrote the store: it runs on the
    store's value as it is at the retry, so the other run's update is not lost (no stale_read write)."""
    engine = engine_for(tmp_path, make_engine, {"sharing": SHARING})
    failed = engine.start("sharing", {"parts": 0}, actor="agent:a")
    assert failed.status == "failed" and engine.data_stores() == []
    engine.start("sharing", {"parts": 3}, actor="agent:a")
    assert [(s["value"], s["version"]) for s in engine.data_stores("sharing")] == [(1, 1)]
    retried = engine.retry(failed.id, "bump", {"parts": 4}, actor="human:alice")
    assert retried.status == "active" and [s.id for s in retried.ready_steps] == ["after"]
    assert [(s["value"], s["version"]) for s in engine.data_stores("sharing")] == [(2, 2)]  # 1 + 1: nothing lost
    [entry] = [e for e in engine.log(failed.id) if e["event"] == "data_store_written"]
    assert (entry["detail"]["read_version"], entry["detail"]["previous"], entry["detail"]["version"]) == (1, 1, 2)
    assert "stale_read" not in entry["detail"]
    assert engine.verify_log()["ok"] is True


def test_a_retry_of_a_step_whose_evidence_was_decided_on_a_stale_read_is_refused(
        tmp_path: Path, make_engine: Callable[..., Engine], cli: Callable[..., Any]) -> None:
    """The step read the store, its completion failed (a data object it writes is missing), another run wrote
    the store: a retry would write the evidence's value, decided on the old one. Refused through the CLI,
    nothing written, the run still failed, the attempt logged."""
    process = with_store("noting", (
        '<bpmn:dataStoreReference id="counter_ref" dataStoreRef="counter"/>'
        '<bpmn:dataObject id="note"/><bpmn:dataObjectReference id="note_ref" dataObjectRef="note"/>'
        '<bpmn:startEvent id="start"/>' + step("record", reads("counter_ref"), writes("counter_ref"), writes("note_ref"))
        + user("after") + '<bpmn:endEvent id="end"/>' + chain("start", "record", "after", "end")))
    engine = engine_for(tmp_path, make_engine, {"noting": process})
    run, other = (engine.start("noting", {}, actor="agent:a") for _ in range(2))
    assert engine.complete(run.id, "record", {"counter": 3}, actor="agent:a").status == "failed"
    engine.complete(other.id, "record", {"counter": 7, "note": "n"}, actor="agent:a")
    engine.close()
    answer = cli("retry", run.id, "record", "--data", '{"note": "seen"}', "--actor", "human:alice", "--json",
                 home=tmp_path / "home")
    assert answer.returncode == 1 and "Traceback" not in answer.stderr, answer
    error = answer.json["error"]
    assert error["code"] == "data_store_stale" and error["details"]["stores"][0]["written_by_run"] == other.id
    assert "was not retried" in error["message"] and "the run is still failed" in error["message"]
    stores = cli("stores", "--json", home=tmp_path / "home").json["data"]
    assert [(s["value"], s["version"]) for s in stores] == [(7, 1)]
    shown = cli("status", run.id, "--json", home=tmp_path / "home").json["data"]
    assert shown["status"] == "failed"
    log = cli("log", run.id, "--json", home=tmp_path / "home").json["data"]
    assert (log[-1]["event"], log[-1]["detail"]["attempt"], log[-1]["detail"]["reason"]) == (
        "refused", "retry", "data_store_stale")
    assert not [e for e in log if e["event"] == "data_store_written"]
