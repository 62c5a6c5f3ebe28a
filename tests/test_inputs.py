"""Size and shape first: evidence, data and reasons are checked before the actor and the run's state,
and a refused input is logged by its sha256 and size only (issue 12)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, Callable

import pytest
import sqlalchemy as sa

from support import BACKEND, CLIResult, HomeBuilder
from test_mcp import call, run_session
from tiergate.engine import Engine
from tiergate.errors import InvalidDataError, LimitExceededError

Cli = Callable[..., CLIResult]


def log_bytes(engine: Engine) -> int:
    """What the log and the runs take on disk: the database file, or PostgreSQL's relations."""
    if BACKEND == "sqlite":
        path = Path(engine.db.url.database)
        return sum(p.stat().st_size for p in path.parent.glob(path.name + "*"))
    with engine.db.read() as conn:
        return int(conn.execute(sa.text("SELECT pg_total_relation_size('log_entries') + "
                                        "pg_total_relation_size('runs')")).scalar())


def completed_run(engine: Engine) -> str:
    run = engine.start("demo", {"ticket_id": "T-1"}, actor="agent:bot").id
    engine.complete(run, "gather", {"summary": "a long enough summary", "severity": "S2"}, actor="agent:bot")
    engine.skip(run, "extra", "not needed", actor="agent:bot")
    engine.complete(run, "review", {"approved": True}, actor="human:alice")
    assert engine.status(run).status == "completed"
    return run


def refused_entries(engine: Engine, run: str) -> list[dict[str, Any]]:
    return [e for e in engine.log(run) if e["event"] == "refused"]


def test_oversized_evidence_on_a_completed_run_is_refused_for_its_size_and_logged_by_digest(
        engine: Engine, cli: Cli, demo_home: HomeBuilder, tmp_path: Path) -> None:
    run = completed_run(engine)
    big = tmp_path / "big.json"
    big.write_text(json.dumps({"summary": "x" * (20 * 1024 * 1024), "severity": "S1"}))
    digest = hashlib.sha256(big.read_bytes()).hexdigest()
    before = log_bytes(engine)
    for _ in range(4):
        result = cli("complete", run, "gather", "--evidence", f"@{big}", "--actor", "agent:bot", "--json",
                     home=demo_home)
        assert result.returncode == 1, result
        error = result.json["error"]
        # The size is the answer, not the finished run: size and shape come first.
        assert error["code"] == "limit_exceeded" and error["details"]["limit"] == "evidence_bytes"
        assert error["details"]["sha256"] == digest and "Traceback" not in result.stderr
    growth = log_bytes(engine) - before
    assert growth < 256 * 1024, growth
    entries = refused_entries(engine, run)
    assert len(entries) == 4
    detail = entries[-1]["detail"]
    assert detail["evidence"] == {"omitted": True, "sha256": digest, "bytes": big.stat().st_size}
    assert detail["limit"] == "evidence_bytes" and detail["code"] == "limit_exceeded"
    assert len(json.dumps(detail)) < 1024


def test_a_refusal_on_a_finished_run_logs_large_evidence_by_digest_only(engine: Engine) -> None:
    run = completed_run(engine)
    evidence = {"summary": "y" * 100_000, "severity": "S1"}
    with pytest.raises(Exception) as refused:
        engine.complete(run, "gather", evidence, actor="agent:bot")
    assert getattr(refused.value, "code", None) == "refused"
    logged = refused_entries(engine, run)[-1]["detail"]["evidence"]
    assert logged["omitted"] is True and logged["bytes"] > 100_000 and set(logged) == {"omitted", "sha256", "bytes"}
    small = {"summary": "short", "severity": "S1"}
    with pytest.raises(Exception):
        engine.complete(run, "gather", small, actor="agent:bot")
    assert refused_entries(engine, run)[-1]["detail"]["evidence"] == small


@pytest.mark.parametrize("text, problem", [
    ('{"summary": "a long enough summary", "severity": NaN}', "not_finite"),
    ('{"summary": "a long enough summary", "severity": Infinity}', "not_finite"),
    ('{"summary": "a long enough \\ud800 summary", "severity": "S1"}', "lone_surrogate"),
    ('{"summary": "a long enough summary", "severity": "S1", "severity": "S4"}', "duplicate_key"),
])
def test_malformed_evidence_is_refused_before_the_actor_and_logged(engine: Engine, cli: Cli,
                                                                   demo_home: HomeBuilder, text: str,
                                                                   problem: str) -> None:
    run = engine.start("demo", {"ticket_id": "T-1"}, actor="agent:bot").id
    # human:nobody may not do the step either: the shape is what the answer names.
    result = cli("complete", run, "gather", "--evidence", text, "--actor", "human:nobody", "--json", home=demo_home)
    assert result.returncode == 1, result  # data that does not fit, not a usage error
    error = result.json["error"]
    assert error["code"] == "invalid_evidence" and error["details"]["problem"] == problem
    assert "Traceback" not in result.stderr
    assert engine.status(run).ready_steps[0].id == "gather"
    entry = refused_entries(engine, run)[-1]
    assert entry["detail"]["problem"] == problem and entry["detail"]["evidence"]["omitted"] is True
    assert entry["actor"] == "human:nobody"


def test_non_utf8_evidence_file_and_deep_nesting_are_clear_errors(engine: Engine, cli: Cli,
                                                                  demo_home: HomeBuilder, tmp_path: Path) -> None:
    run = engine.start("demo", {"ticket_id": "T-1"}, actor="agent:bot").id
    latin1 = tmp_path / "latin1.json"
    latin1.write_bytes('{"summary": "caf\xe9 au lait, long enough", "severity": "S1"}'.encode("latin-1"))
    result = cli("complete", run, "gather", "--evidence", f"@{latin1}", "--actor", "agent:bot", "--json",
                 home=demo_home)
    assert result.returncode == 1 and result.json["error"]["details"]["problem"] == "not_utf8", result
    deep = tmp_path / "deep.json"
    deep.write_text('{"summary": ' + "[" * 10_000 + "]" * 10_000 + ', "severity": "S1"}')
    result = cli("complete", run, "gather", "--evidence", f"@{deep}", "--actor", "agent:bot", "--json",
                 home=demo_home)
    assert result.returncode == 1, result
    assert result.json["error"]["code"] == "limit_exceeded"
    assert result.json["error"]["details"]["limit"] == "input_depth"
    assert "Traceback" not in result.stderr + result.stdout
    assert [e["detail"].get("problem") or e["detail"]["limit"] for e in refused_entries(engine, run)] == \
        ["not_utf8", "input_depth"]


def test_engine_checks_shape_of_data_and_reasons(engine: Engine) -> None:
    with pytest.raises(InvalidDataError) as bad:
        engine.start("demo", {"ticket_id": "T-1", "x": float("nan")}, actor="agent:bot")
    assert bad.value.code == "invalid_data" and bad.value.details["pointer"] == "/x"
    nested: Any = "leaf"
    for _ in range(40):
        nested = {"a": nested}
    with pytest.raises(LimitExceededError) as deep:
        engine.start("demo", {"ticket_id": "T-1", "x": nested}, actor="agent:bot")
    assert deep.value.details["limit"] == "input_depth"
    run = engine.start("demo", {"ticket_id": "T-1"}, actor="agent:bot").id
    with pytest.raises(LimitExceededError) as long_reason:
        engine.skip(run, "extra", "r" * 100_000, actor="agent:bot")
    assert long_reason.value.details["limit"] == "reason_chars"
    logged = refused_entries(engine, run)[-1]["detail"]
    assert logged["reason"] == {"omitted": True, "sha256": long_reason.value.details["sha256"],
                                "bytes": 100_002}
    assert logged["code"] == "limit_exceeded" and logged["attempt"] == "skip"


def test_mcp_refuses_oversized_evidence_without_growing_the_log(
        demo_home: HomeBuilder, db_url: str, tmp_path: Path, make_engine: Callable[..., Engine]) -> None:
    engine = make_engine(demo_home)
    run = completed_run(engine)
    active = engine.start("demo", {"ticket_id": "T-2"}, actor="agent:bot").id
    before = log_bytes(engine)

    async def agent(session: Any) -> None:
        from mcp.shared.exceptions import MCPError

        for _ in range(3):  # over evidence_bytes, within the transport's message_bytes: the envelope
            answer = await call(session, "complete_step", run=run, step="gather",
                                evidence={"summary": "z" * 265_000, "severity": "S1"})
            assert answer["error"]["code"] == "limit_exceeded"
            assert answer["error"]["details"]["limit"] == "evidence_bytes"
        for _ in range(3):  # a 20 MB line: refused by the transport unread, and the server goes on
            with pytest.raises(MCPError) as refused:
                await session.call_tool("complete_step", {"run": run, "step": "gather", "evidence": {
                    "summary": "z" * (20 * 1024 * 1024), "severity": "S1"}})
            assert refused.value.error.code == -32600 and refused.value.error.data["problem"] == "message_bytes"
        assert (await call(session, "get_run", run=active))["ok"] is True

    run_session(demo_home.root, db_url, "agent:bot", tmp_path, agent)
    assert log_bytes(engine) - before < 256 * 1024
    assert len(refused_entries(engine, run)) == 3
    assert engine.status(active).ready_steps[0].id == "gather"
    from tiergate import doorlog

    rows = doorlog.entries(engine)
    assert [(r["door"], r["problem"]) for r in rows] == [("mcp-stdio", "message_bytes")] * 3
    assert all(r["bytes"] > 20 * 1024 * 1024 for r in rows)
