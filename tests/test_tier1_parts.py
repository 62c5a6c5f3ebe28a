"""A large Tier 1 task tree is stored a task a row (``tiergate.store.parts``): a step writes the
rows that changed, the run row binds their digests, ``log verify`` re-hashes them, and a run read
back (a new process, the CLI) is the run the long-lived engine kept."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from support import CLIResult, HomeBuilder
from test_tier1_instances import camunda_mi, repeated
from test_tier1_kept_restored import _normal
from tier1_helpers import bpmn, chain, tier1_home, user

from tiergate import log as execution_log
from tiergate.actors import SYSTEM
from tiergate.engine import Engine
from tiergate.errors import IntegrityError
from tiergate.jsontext import Member, Parted
from tiergate.lifecycle import RunStatus
from tiergate.log import LogEvent
from tiergate.store import parts
from tiergate.store import runs as store
from tiergate.store.db import Database

TENANTS = [f"tenant-{i:03d}" for i in range(80)]  # ≈ 30 kB of task tree: stored in parts
BODY = ('<bpmn:startEvent id="start"/>' + repeated("verify", camunda_mi("tenants", "tenant"))
        + user("close") + '<bpmn:endEvent id="end"/>' + chain("start", "verify", "close", "end"))
EVIDENCE = {"note": "checked"}


def _home(tmp_path: Path) -> HomeBuilder:
    return tier1_home(tmp_path / "home", {"roll": bpmn("roll", BODY)})


def _sql(engine: Engine, statement: str, **params: Any) -> Any:
    with engine.db.write() as conn:
        return conn.execute(sa.text(statement), params)


def _rows(engine: Engine, run_id: str) -> dict[str, str]:
    with engine.db.read() as conn:
        return {key: body for key, body in conn.execute(sa.text(
            "SELECT key, body FROM run_parts WHERE run_id = :r AND path = '/workflow/tasks'"), {"r": run_id})}


def _entries(engine: Engine, run_id: str) -> int:
    with engine.db.read() as conn:
        return int(conn.execute(sa.text("SELECT count(*) FROM log_entries WHERE run_id = :r"), {"r": run_id}).scalar())


def _root(engine: Engine, run_id: str) -> dict[str, Any]:
    with engine.db.read() as conn:
        return json.loads(conn.execute(sa.text("SELECT CAST(state AS TEXT) FROM runs WHERE id = :r"),
                                       {"r": run_id}).scalar())  # type: ignore[no-any-return]


def _stored(db_url: str, run_id: str) -> tuple[str, Any]:
    database = Database(db_url)
    try:
        with database.read() as conn:
            record = store.get_run(conn, run_id)
    finally:
        database.dispose()
    assert record is not None
    return record.status.value, _normal(record.state, {})


def test_a_large_task_tree_is_stored_a_task_a_row_and_a_step_writes_only_what_changed(
        tmp_path: Path, make_engine: Callable[..., Engine], monkeypatch: pytest.MonkeyPatch) -> None:
    engine = make_engine(_home(tmp_path))
    run = engine.start("roll", {"tenants": TENANTS}, actor="agent:a").id
    root = _root(engine, run)
    assert root["workflow"]["tasks"] is None and set(root["stored_parts"]) == {"/workflow/tasks"}
    rows = _rows(engine, run)
    assert root["stored_parts"]["/workflow/tasks"]["n"] == len(rows) > len(TENANTS)

    splits: list[parts.Split] = []
    real_split = parts.split

    def recording(state: dict[str, Any], before: Any) -> Any:
        made = real_split(state, before)
        splits.append(made)
        return made

    # The first step adds its evidence's keys to the run's data: every instance's data (a delta
    # against it) changes once. A later step changes a few tasks.
    engine.complete(run, "verify[3]", {"note": "first"}, actor="agent:a")
    rows = _rows(engine, run)
    monkeypatch.setattr(parts, "split", recording)
    engine.complete(run, "verify[7]", {"note": "second"}, actor="agent:a")
    (split,) = splits
    assert split is not None and not split.cleared
    assert 1 <= len(split.written) + len(split.deleted) <= 6  # of more than 80 rows
    after = _rows(engine, run)
    changed = {key for key in rows.keys() | after.keys() if rows.get(key) != after.get(key)}
    assert changed == {key for _, key, _, _ in split.written} | {key for _, key in split.deleted}
    assert engine.verify_log()["ok"] is True


def test_a_small_run_is_stored_whole(tmp_path: Path, make_engine: Callable[..., Engine]) -> None:
    engine = make_engine(_home(tmp_path))
    run = engine.start("roll", {"tenants": ["acme", "globex"]}, actor="agent:a").id
    assert parts.KEY not in _root(engine, run) and _root(engine, run)["workflow"]["tasks"]
    assert _rows(engine, run) == {}


def test_a_run_kept_in_memory_stores_what_runs_restored_by_the_cli_store(
        tmp_path: Path, db_url: str, make_engine: Callable[..., Engine], cli: Callable[..., CLIResult]) -> None:
    home = _home(tmp_path)
    engine = make_engine(home)
    kept = engine.start("roll", {"tenants": TENANTS}, actor="agent:a").id
    started = cli("start", "roll", "--data", json.dumps({"tenants": TENANTS}), "--actor", "agent:a", "--json",
                  home=home)
    assert started.returncode == 0, started
    restored = started.json["data"]["id"]
    assert _stored(db_url, kept) == _stored(db_url, restored)
    for index in (3, 0, 79, 41):
        step = f"verify[{index}]"
        engine.complete(kept, step, {"note": step}, actor="agent:a")
        done = cli("complete", restored, step, "--evidence", json.dumps({"note": step}), "--actor", "agent:a",
                   "--json", home=home)
        assert done.returncode == 0, done
        assert _stored(db_url, kept) == _stored(db_url, restored), step
    # A new engine (another process's view) goes on from the parts it reads back, and so does the first.
    other = make_engine(home)
    other.complete(kept, "verify[5]", EVIDENCE, actor="agent:a")
    engine.complete(kept, "verify[6]", EVIDENCE, actor="agent:a")
    status = cli("status", kept, "--json", home=home)
    assert status.returncode == 0, status
    ready = {s["id"] for s in status.json["data"]["steps"] if s["state"] == "ready"}
    assert len(ready) == len(TENANTS) - 6 and "verify[5]" not in ready and "verify[6]" not in ready
    assert engine.verify_log()["ok"] is True


def test_every_step_to_the_end_keeps_the_log_verified(tmp_path: Path, make_engine: Callable[..., Engine]) -> None:
    engine = make_engine(_home(tmp_path))
    run = engine.start("roll", {"tenants": TENANTS}, actor="agent:a").id
    for index in range(len(TENANTS)):
        engine.complete(run, f"verify[{index}]", EVIDENCE, actor="agent:a")
    assert engine.verify_log()["ok"] is True
    assert engine.complete(run, "close", EVIDENCE, actor="agent:a").status == "completed"
    assert _rows(engine, run) == {} and parts.KEY not in _root(engine, run)  # small again: whole
    assert engine.verify_log()["ok"] is True


@pytest.mark.parametrize("tamper", ["edit", "delete", "insert", "reorder", "root"])
def test_tampering_with_one_part_is_found_and_named(tmp_path: Path, make_engine: Callable[..., Engine],
                                                   cli: Callable[..., CLIResult], tamper: str) -> None:
    home = _home(tmp_path)
    engine = make_engine(home)
    run = engine.start("roll", {"tenants": TENANTS}, actor="agent:a").id
    engine.complete(run, "verify[2]", EVIDENCE, actor="agent:a")
    assert engine.verify_log()["ok"] is True
    entries = _entries(engine, run)
    with engine.db.read() as conn:
        key, body = conn.execute(sa.text("SELECT key, body FROM run_parts WHERE run_id = :r AND body LIKE :t "
                                         "ORDER BY pos DESC LIMIT 1"), {"r": run, "t": '%"tenant-011"%'}).one()
    if tamper == "edit":
        _sql(engine, "UPDATE run_parts SET body = :b WHERE run_id = :r AND key = :k",
             b=body.replace("tenant-011", "tenant-666"), r=run, k=key)
    elif tamper == "delete":
        _sql(engine, "DELETE FROM run_parts WHERE run_id = :r AND key = :k", r=run, k=key)
    elif tamper == "insert":
        _sql(engine, "INSERT INTO run_parts (run_id, path, key, pos, body) VALUES (:r, '/workflow/tasks', 'x', "
                     "100000, :b)", r=run, b=body)
    elif tamper == "reorder":
        _sql(engine, "UPDATE run_parts SET pos = -1 WHERE run_id = :r AND key = :k", r=run, k=key)
    else:  # the root's digest changed to match an edited part: the root no longer hashes to what the log binds
        root = _root(engine, run)
        root["stored_parts"]["/workflow/tasks"]["sha256"] = "0" * 64
        _sql(engine, "UPDATE runs SET state = :s WHERE id = :r", s=json.dumps(root), r=run)
    broken = engine.verify_log()["broken"]
    assert broken is not None and broken["run_id"] == run
    expected = "runs.state was edited" if tamper == "root" else "run_parts was edited"
    assert expected in broken["problem"]
    result = cli("log", "verify", "--json", home=home)
    assert result.returncode == 1 and result.json["error"]["code"] == "log_tampered"
    assert expected in result.json["error"]["message"]
    # A run whose parts do not give the digests its state lists is not moved (nor shown).
    with pytest.raises(IntegrityError) as err:
        make_engine(home).status(run)
    assert err.value.code == "log_tampered" and "/workflow/tasks" in err.value.message
    refused = cli("complete", run, "verify[5]", "--evidence", json.dumps(EVIDENCE), "--actor", "agent:a", "--json",
                  home=home)
    assert refused.returncode == 1 and refused.json["error"]["code"] == "log_tampered", refused
    assert _entries(engine, run) == entries  # refused before anything was written


def test_a_state_stored_whole_before_is_read_as_it_is_and_stored_in_parts_from_its_next_change(
        tmp_path: Path, make_engine: Callable[..., Engine], monkeypatch: pytest.MonkeyPatch) -> None:
    """Runs stored before migration 0023 (whole states) are not converted: each is stored in parts
    from its next change, which the log binds as every change."""
    engine = make_engine(_home(tmp_path))
    monkeypatch.setattr(parts, "MIN_TEXT", 10**9)  # as before parts existed
    run = engine.start("roll", {"tenants": TENANTS}, actor="agent:a").id
    engine.complete(run, "verify[0]", EVIDENCE, actor="agent:a")
    assert _rows(engine, run) == {} and _root(engine, run)["workflow"]["tasks"]
    monkeypatch.undo()
    fresh = make_engine(tmp_path / "home")  # reads the whole state from the database
    fresh.complete(run, "verify[1]", EVIDENCE, actor="agent:a")
    assert len(_rows(engine, run)) > len(TENANTS) - 2 and _root(engine, run)["workflow"]["tasks"] is None
    assert fresh.verify_log()["ok"] is True
    assert fresh.complete(run, "verify[2]", EVIDENCE, actor="agent:a").status == "active"
    assert fresh.verify_log()["ok"] is True


def test_cancelling_a_run_read_back_in_parts_keeps_its_parts(tmp_path: Path,
                                                             make_engine: Callable[..., Engine]) -> None:
    home = _home(tmp_path)
    run = make_engine(home).start("roll", {"tenants": TENANTS}, actor="agent:a").id
    rows = _rows(make_engine(home), run)
    other = make_engine(home)
    assert other.cancel(run, "not needed", actor="human:ann").status == "cancelled"
    assert _rows(other, run) == rows
    assert other.verify_log()["ok"] is True
    assert make_engine(home).status(run).status == "cancelled"


def test_downgrading_puts_the_parts_back_into_the_state(tmp_path: Path, db_url: str,
                                                        make_engine: Callable[..., Engine]) -> None:
    from alembic import command

    home = _home(tmp_path)
    engine = make_engine(home)
    run = engine.start("roll", {"tenants": TENANTS}, actor="agent:a").id
    engine.complete(run, "verify[1]", EVIDENCE, actor="agent:a")
    before = _stored(db_url, run)
    database = engine.db
    config = database.alembic_config()
    with database.engine.connect() as conn:
        config.attributes["connection"] = conn
        command.downgrade(config, "0022")
        conn.commit()
    with database.read() as conn:
        whole = json.loads(conn.execute(sa.text("SELECT CAST(state AS TEXT) FROM runs WHERE id = :r"),
                                        {"r": run}).scalar())
    assert parts.KEY not in whole and _normal(whole, {}) == before[1]
    database.upgrade()
    assert _stored(db_url, run) == before  # read as it is, whole
    # The log bound the state as stored in parts: the older verify names the run until its next change.
    assert "runs.state was edited" in engine.verify_log()["broken"]["problem"]
    make_engine(home).complete(run, "verify[2]", EVIDENCE, actor="agent:a")
    assert engine.verify_log()["ok"] is True and _rows(engine, run)


def _records(count: int, changed: int | None = None) -> Parted:
    members = [Member(f"step-{i:04d}", json.dumps({"status": "done" if i == changed else "ready", "i": i}))
               for i in range(count)]
    return Parted({m.key: json.loads(m.text) for m in members}, members)


def test_any_large_parted_value_of_a_state_is_stored_apart_and_read_back(db_url: str) -> None:
    """Not only the task tree: a ``Parted`` value at the top of any runner's state, without the
    hints a partial dump gives (every member compared)."""
    database = Database(db_url)
    database.upgrade()
    now = datetime.now(timezone.utc)
    state = {"steps": _records(600), "data": {"customer": "acme"}}
    try:
        with database.write() as conn:
            store.insert_run(conn, run_id="r1", process_id="p", definition_version="v" * 64, tier=1,
                             status=RunStatus.ACTIVE, state=state, started_by="agent:a",
                             events=[LogEvent("started", SYSTEM)], now=now)
        with database.read() as conn:
            record = store.get_run(conn, "r1")
            assert record is not None and record.state == json.loads(json.dumps(state))
            assert conn.execute(sa.text("SELECT count(*) FROM run_parts WHERE path = '/steps'")).scalar() == 600
        with database.write() as conn:
            saved = store.save_transition(conn, record, {**state, "steps": _records(600, changed=17)},
                                          RunStatus.ACTIVE, [LogEvent("step_completed", SYSTEM)], now)
            assert saved is not None
        with database.read() as conn:
            again = store.get_run(conn, "r1")
            assert again is not None and again.state["steps"]["step-0017"]["status"] == "done"
            assert execution_log.verify(conn)[2] is None
    finally:
        database.dispose()


def test_four_processes_completing_four_instances_of_a_run_in_parts_all_land(
        tmp_path: Path, db_url: str, make_engine: Callable[..., Engine]) -> None:
    from test_tier1_concurrency import _complete, _spawn

    home = _home(tmp_path)
    engine = make_engine(home)
    run = engine.start("roll", {"tenants": TENANTS}, actor="agent:a").id
    engine.complete(run, "verify[0]", EVIDENCE, actor="agent:a")  # every process starts from a state in parts
    jobs = [(str(home.root), db_url, run, f"verify[{i}]", {"note": f"n{i}"}, f"agent:w{i}") for i in (11, 22, 33, 44)]
    assert sorted(outcome for _, outcome, _ in _spawn(_complete, jobs)) == ["ok"] * 4
    fresh = make_engine(home)
    done = {s.id for s in fresh.status(run).steps if s.state == "done"}
    assert {"verify[0]", "verify[11]", "verify[22]", "verify[33]", "verify[44]"} <= done
    assert fresh.verify_log()["ok"] is True
    fresh.complete(run, "verify[1]", EVIDENCE, actor="agent:a")
    assert fresh.verify_log()["ok"] is True


def test_the_run_page_of_a_run_in_parts_shows_its_diagram_states_and_its_check(
        tmp_path: Path, make_engine: Callable[..., Engine]) -> None:
    home = _home(tmp_path)
    run = make_engine(home).start("roll", {"tenants": TENANTS}, actor="agent:a").id
    make_engine(home).complete(run, "verify[0]", EVIDENCE, actor="agent:a")
    view = make_engine(home).run_view(run)  # read back from the database, parts and all
    assert view["verify"]["ok"] is True
    assert view["diagram"]["elements"]["verify"] == "ready" and view["diagram"]["elements"]["start"] == "finished"


def test_a_run_in_parts_through_the_server_with_the_cli_as_its_client(
        tmp_path: Path, db_url: str, make_engine: Callable[..., Engine], cli: Callable[..., CLIResult]) -> None:
    from serving import running_server

    home = _home(tmp_path)
    issued = cli("tokens", "issue", "agent:bot", "--json", home=home)
    assert issued.returncode == 0, issued
    with running_server(home.root, db_url, tmp_path / "server.log") as server:
        as_bot = {"TIERGATE_URL": server.url, "TIERGATE_TOKEN": issued.json["data"]["token"]}
        started = cli("start", "roll", "--data", json.dumps({"tenants": TENANTS}), "--json", home=home, env=as_bot)
        assert started.returncode == 0, started
        run = started.json["data"]["id"]
        for step in ("verify[9]", "verify[3]"):  # the server keeps the run's workflow between them
            done = cli("complete", run, step, "--evidence", json.dumps(EVIDENCE), "--json", home=home, env=as_bot)
            assert done.returncode == 0, done
        status = cli("status", run, "--json", home=home, env=as_bot)
        assert status.returncode == 0, status
    engine = make_engine(home)
    assert _root(engine, run)["workflow"]["tasks"] is None  # stored in parts
    direct = {s.id: s.state for s in engine.status(run).steps}
    assert {s["id"]: s["state"] for s in status.json["data"]["steps"]} == direct
    assert direct["verify[9]"] == direct["verify[3]"] == "done" and direct["verify[4]"] == "ready"
    assert engine.verify_log()["ok"] is True


SUB_BODY = ('<bpmn:startEvent id="start"/><bpmn:subProcess id="batch"><bpmn:startEvent id="b_s"/>'
            + repeated("verify", camunda_mi("tenants", "tenant")) + '<bpmn:endEvent id="b_end"/>'
            + chain("b_s", "verify", "b_end", prefix="b") + '</bpmn:subProcess>'
            + user("close") + '<bpmn:endEvent id="end"/>' + chain("start", "batch", "close", "end"))


def test_a_large_task_tree_of_a_subprocess_is_stored_in_parts_too(tmp_path: Path, db_url: str,
                                                                  make_engine: Callable[..., Engine]) -> None:
    home = tier1_home(tmp_path / "home", {"batched": bpmn("batched", SUB_BODY)})
    engine = make_engine(home)
    run = engine.start("batched", {"tenants": TENANTS}, actor="agent:a").id
    engine.complete(run, "verify[4]", EVIDENCE, actor="agent:a")
    listed = _root(engine, run)["stored_parts"]
    (path,) = [p for p in listed if p.startswith("/workflow/subprocesses/")]
    assert path.endswith("/tasks") and listed[path]["n"] > len(TENANTS)
    before = _stored(db_url, run)
    make_engine(home).complete(run, "verify[5]", EVIDENCE, actor="agent:a")  # from the parts read back
    engine.complete(run, "verify[6]", EVIDENCE, actor="agent:a")
    after = make_engine(home).status(run)
    assert {s.id for s in after.steps if s.state == "done"} >= {"verify[4]", "verify[5]", "verify[6]"}
    assert before != _stored(db_url, run) and engine.verify_log()["ok"] is True
