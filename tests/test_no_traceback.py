"""Issue 12, "no traceback, ever": bad input, a broken disk or database, and malformed JSON-RPC get an
answer (the envelope, or the JSON-RPC error) through the real CLI and the real stdio MCP server."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable

import pytest

from support import BACKEND, REPO, CLIResult, HomeBuilder
from tiergate.store.db import database_failure

Cli = Callable[..., CLIResult]
START = '{"ticket_id": "T-1"}'


def _started(cli: Cli, home: HomeBuilder) -> str:
    result = cli("start", "demo", "--data", START, "--actor", "human:alice", "--json", home=home)
    assert result.returncode == 0, result
    return str(result.json["data"]["id"])


def _envelope(result: CLIResult) -> dict[str, Any]:
    assert "Traceback" not in result.stderr + result.stdout, result
    assert result.returncode in (1, 2), result
    answer = json.loads(result.stdout)
    assert answer["ok"] is False
    return answer["error"]  # type: ignore[no-any-return]


def test_bad_input_through_the_cli_is_answered(cli: Cli, demo_home: HomeBuilder) -> None:
    run = _started(cli, demo_home)
    files = demo_home.root / "inputs"
    files.mkdir()
    (files / "latin1.json").write_bytes('{"summary": "caf\u00e9 au lait ok", "severity": "S1"}'.encode("latin-1"))
    (files / "deep.json").write_text("[" * 10_000 + "]" * 10_000, encoding="utf-8")
    (files / "deep-object.json").write_text('{"a":' * 10_000 + "1" + "}" * 10_000, encoding="utf-8")
    matrix = [  # the shape of the input is checked first (tiergate.inputs), before the actor and the run
        (["complete", run, "gather", "--evidence", '{"summary": NaN}'], "invalid_evidence"),
        (["complete", run, "gather", "--evidence", '{"summary": -Infinity}'], "invalid_evidence"),
        (["complete", run, "gather", "--evidence", '{"summary": "\\ud800 alone"}'], "invalid_evidence"),
        (["complete", run, "gather", "--evidence", f"@{files / 'latin1.json'}"], "invalid_evidence"),
        (["complete", run, "gather", "--evidence", f"@{files / 'deep.json'}"], "limit_exceeded"),
        (["complete", run, "gather", "--evidence", f"@{files / 'deep-object.json'}"], "limit_exceeded"),
        (["complete", run, "gather", "--evidence", f"@{files / 'missing.json'}"], "usage"),
        (["start", "demo", "--data", '{"ticket_id": Infinity}'], "invalid_data"),
        (["retry", run, "gather", "--data", "[" * 5000], "limit_exceeded"),
        # two parsers could read these differently: refused wherever they come in (tiergate.wirejson too)
        (["complete", run, "gather", "--evidence", '{"summary": 1e400}'], "invalid_evidence"),
        (["complete", run, "gather", "--evidence", '{"severity": "S1", "severity": "S4"}'], "invalid_evidence"),
        (["complete", "no-such-run", "gather", "--evidence", '{"summary": NaN}'], "invalid_evidence"),
        (["start", "demo", "--data", '{"ticket_id": "T-1", "ticket_id": "T-2"}'], "invalid_data"),
        (["start", "demo", "--data", "[1, 2]"], "invalid_data"),
        (["start", "demo", "--data", '{"ticket_id": '], "invalid_json"),
        (["retry", run, "gather", "--data", '{"a": 1, "a": 2}'], "invalid_data"),
        (["retry", run, "gather", "--data", "[1]"], "invalid_data"),
    ]
    for args, code in matrix:
        result = cli(*args, "--actor", "human:alice", "--json", home=demo_home)
        assert _envelope(result)["code"] == code, (args, result)
    reason = cli("skip", run, "extra", "--reason", "not needed \udcff", "--actor", "human:alice", "--json",
                 home=demo_home)
    assert _envelope(reason)["code"] == "invalid_encoding"
    status = cli("status", run, "--json", home=demo_home)
    assert status.json["data"]["ready"] == ["gather"]  # nothing changed


@pytest.mark.skipif(BACKEND != "sqlite", reason="file states of a SQLite database")
def test_a_file_that_is_not_a_database_and_a_read_only_database_are_answered(cli: Cli, demo_home: HomeBuilder,
                                                                            tmp_path: Path) -> None:
    garbage = tmp_path / "garbage.db"
    garbage.write_bytes(b"this is not a database at all, just some text " * 200)
    for args in (["status", "abc"], ["start", "demo", "--data", START, "--actor", "human:alice"], ["runs"]):
        result = cli(*args, "--json", home=demo_home, env={"TIERGATE_DATABASE_URL": f"sqlite:///{garbage}"})
        error = _envelope(result)
        assert error["code"] == "not_a_database", result
        assert "not a SQLite database" in error["message"]
    good = tmp_path / "good.db"
    made = cli("start", "demo", "--data", START, "--actor", "human:alice", "--json", home=demo_home,
               env={"TIERGATE_DATABASE_URL": f"sqlite:///{good}"})
    assert made.returncode == 0, made
    read_only = f"sqlite:///file:{good}?mode=ro&uri=true"
    result = cli("complete", made.json["data"]["id"], "gather", "--evidence",
                 '{"summary": "A long enough summary", "severity": "S2"}', "--actor", "human:alice", "--json",
                 home=demo_home, env={"TIERGATE_DATABASE_URL": read_only})
    assert _envelope(result)["code"] == "database_readonly", result
    assert cli("status", made.json["data"]["id"], "--json", home=demo_home,
               env={"TIERGATE_DATABASE_URL": read_only}).json["data"]["ready"] == ["gather"]


def test_disk_full_and_locked_sqlite_errors_map_to_their_codes(tmp_path: Path) -> None:
    full = sqlite3.connect(tmp_path / "full.db")
    full.execute("CREATE TABLE t (x TEXT)")
    full.execute("PRAGMA max_page_count = 2")
    with pytest.raises(sqlite3.OperationalError) as err:
        full.execute("INSERT INTO t VALUES (?)", ("x" * 100_000,))
    assert database_failure(err.value, "the database").code == "disk_full"  # type: ignore[union-attr]
    holder = sqlite3.connect(tmp_path / "locked.db", isolation_level=None)
    holder.execute("CREATE TABLE t (x)")
    holder.execute("BEGIN IMMEDIATE")
    waiter = sqlite3.connect(tmp_path / "locked.db", timeout=0, isolation_level=None)
    with pytest.raises(sqlite3.OperationalError) as err:
        waiter.execute("BEGIN IMMEDIATE")
    found = database_failure(err.value, "the database")
    assert found is not None and found.code == "database_locked" and "Run the command again" in found.message
    holder.execute("ROLLBACK")


# --- the stdio MCP server ------------------------------------------------------------------------

def _serve(home: HomeBuilder, db_url: str, lines: list[bytes]) -> tuple[dict[Any, dict[str, Any]], str]:
    """Feed ``lines`` to `tiergate mcp` after the handshake; returns the answers by id, and stderr."""
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("TIERGATE_")},
           "TIERGATE_DATABASE_URL": db_url, "PYTHONPATH": str(REPO / "src"), "NO_COLOR": "1"}
    hello = {"jsonrpc": "2.0", "id": "init", "method": "initialize",
             "params": {"protocolVersion": "2025-06-18", "capabilities": {},
                        "clientInfo": {"name": "test", "version": "1"}}}
    ready = {"jsonrpc": "2.0", "method": "notifications/initialized"}
    proc = subprocess.Popen([sys.executable, "-m", "tiergate", "mcp", "--actor", "agent:bot"], cwd=home.root,
                            env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stdin is not None and proc.stdout is not None
    proc.stdin.write(json.dumps(hello).encode() + b"\n")
    proc.stdin.flush()
    first = json.loads(proc.stdout.readline())
    assert first["id"] == "init" and "result" in first, first
    proc.stdin.write(json.dumps(ready).encode() + b"\n" + b"".join(line + b"\n" for line in lines))
    proc.stdin.flush()
    answers: dict[Any, dict[str, Any]] = {}
    while len(answers) < len(lines):
        line = proc.stdout.readline()
        if not line:
            break
        answer = json.loads(line)
        answers[answer.get("id") if answer.get("id") is not None else f"null-{len(answers)}"] = answer
    _out, err = proc.communicate(timeout=120)  # closes stdin: the server ends
    return answers, err.decode("utf-8", "replace")


def test_malformed_json_rpc_and_bad_arguments_get_answers(demo_home: HomeBuilder, db_url: str) -> None:
    deep = "[" * 10_000 + "]" * 10_000
    call = {"jsonrpc": "2.0", "id": 9, "method": "tools/call",
            "params": {"name": "complete_step", "arguments": {"run": "abc", "step": "gather", "evidence": {}}}}
    lines = [
        b"this is not json",
        b"\xff\xfe not utf-8",
        b'{"jsonrpc": "2.0", "id": 3, "method": "tools/call", "params": {"name": "complete_step", "arguments": '
        + deep.encode() + b"}}",
        b"[1, 2, 3]",
        b'{"jsonrpc": "2.0", "id": 5, "method": "tools/call", "params": {"name": "start_run", "arguments": '
        b'{"process": "demo", "data": {"ticket_id": NaN}}}}',
        json.dumps(call).encode(),
    ]
    answers, stderr = _serve(demo_home, db_url, lines)
    assert "Traceback" not in stderr, stderr
    nulls = sorted(a["error"]["code"] for key, a in answers.items() if str(key).startswith("null-"))
    assert nulls == [-32700, -32700, -32600], answers
    [batch] = [a for key, a in answers.items() if str(key).startswith("null-") and a["error"]["code"] == -32600]
    assert batch["error"]["data"]["problem"] == "batch" and "a batch (a JSON array of messages) is not supported" \
        in batch["error"]["message"], batch
    assert answers[3]["error"]["code"] == -32600 and "nested more than 40 levels" in answers[3]["error"]["message"]
    assert answers[3]["error"]["data"]["limit"] == "message_depth"
    nan = answers[5]  # refused by the transport's one strict parser: NaN is not JSON
    assert nan["error"]["code"] == -32700 and nan["error"]["data"]["problem"] == "not_finite", nan
    # The server is still there, and answers a good call with the envelope.
    result = answers[9]["result"]
    assert result["isError"] is True and result["structuredContent"]["error"]["code"] == "not_found"


# --- the worker keeps going while the database is away ---------------------------------------------

@pytest.mark.skipif(BACKEND != "sqlite", reason="the database is made to go away by replacing its file")
def test_a_polling_worker_backs_off_and_keeps_going(demo_home: HomeBuilder, tmp_path: Path) -> None:
    path = tmp_path / "away.db"
    path.write_bytes(b"not a database yet " * 100)
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("TIERGATE_")},
           "TIERGATE_DATABASE_URL": f"sqlite:///{path}", "PYTHONPATH": str(REPO / "src"), "NO_COLOR": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "tiergate", "worker", "--interval", "0.2", "--json"],
                            cwd=demo_home.root, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    try:
        first = json.loads(proc.stdout.readline())
        assert first["ok"] is False and first["error"]["code"] == "not_a_database"
        assert first["error"]["details"]["retry_in_s"] >= 1
        path.unlink()  # the database comes back (a new SQLite file sets itself up)
        deadline = time.monotonic() + 90
        answer = first
        while answer["ok"] is False and time.monotonic() < deadline:
            answer = json.loads(proc.stdout.readline())
        assert answer["ok"] is True and answer["data"]["runs"] == 0
        assert proc.poll() is None  # still polling
    finally:
        proc.terminate()
        _out, err = proc.communicate(timeout=60)
    assert "Traceback" not in err
