"""The CLI in real subprocesses: output for people, the JSON envelope, exit codes, exact errors."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable

import sqlalchemy as sa

from support import REPO, CLIResult, HomeBuilder
from tiergate.definitions.models import checklist_json_schema

GOOD = {"summary": "Payslip totals are off by one cent", "severity": "S2"}
Cli = Callable[..., CLIResult]


def _start(cli: Cli, home: HomeBuilder) -> str:
    result = cli("start", "demo", "--data", '{"ticket_id": "T-7"}', "--actor", "agent:bot", "--json", home=home)
    assert result.returncode == 0, result
    return result.json["data"]["id"]


def assert_envelope(result: CLIResult, ok: bool) -> dict[str, Any]:
    answer = result.json
    if ok:
        assert result.returncode == 0, result
        assert set(answer) == {"ok", "data"} and answer["ok"] is True
    else:
        assert result.returncode != 0, result
        assert set(answer) == {"ok", "error"} and answer["ok"] is False
        assert set(answer["error"]) == {"code", "message", "details"}
        assert isinstance(answer["error"]["code"], str) and answer["error"]["message"]
        assert isinstance(answer["error"]["details"], dict)
    return answer


def test_json_envelope_is_the_same_for_every_command(cli: Cli, demo_home: HomeBuilder) -> None:
    """One shape for success and one for failure, across every command that takes --json."""
    run_id = _start(cli, demo_home)
    ok_calls = [
        ("check",), ("processes",), ("status", run_id), ("runs",), ("log",), ("log", run_id), ("log", "verify"),
        ("schema", "checklist"), ("db", "upgrade"),
        ("complete", run_id, "gather", "--evidence", json.dumps(GOOD), "--actor", "agent:bot"),
        ("skip", run_id, "extra", "--reason", "not needed", "--actor", "agent:bot"),
        ("cancel", run_id, "--reason", "test over", "--actor", "human:alice"),
    ]
    for args in ok_calls:
        assert_envelope(cli(*args, "--json", home=demo_home), ok=True)
    bad_calls = [
        ("status", "nope"), ("log", "nope"), ("start", "nope", "--actor", "agent:bot"),
        ("start", "demo", "--data", "{", "--actor", "agent:bot"), ("start", "demo", "--actor", "system:x"),
        ("complete", run_id, "gather", "--evidence", "{}", "--actor", "agent:bot"),
        ("skip", run_id, "extra", "--reason", "x", "--actor", "agent:bot"),
        ("cancel", run_id, "--reason", "again", "--actor", "human:alice"),
        ("runs", "--status", "sideways"),
    ]
    for args in bad_calls:
        assert_envelope(cli(*args, "--json", home=demo_home), ok=False)


def test_start_status_complete_for_people(cli: Cli, demo_home: HomeBuilder) -> None:
    started = cli("start", "demo", "--data", '{"ticket_id": "T-7"}', "--actor", "agent:bot", home=demo_home)
    assert started.returncode == 0, started
    first = started.stdout.splitlines()[0]
    assert first.startswith("run ") and "Demo checklist (demo, tier 2)  status: active" in first
    assert "ready: gather — Gather the facts" in started.stdout
    assert "Look at T-7." in started.stdout
    run_id = first.split()[1]
    status = cli("status", run_id, home=demo_home)
    assert status.returncode == 0
    assert [line.split()[:2] for line in status.stdout.splitlines()[2:5]] == [
        ["ready", "gather"], ["locked", "extra"], ["locked", "review"]]
    assert '"ticket_id": "T-7"' in status.stdout
    done = cli("complete", run_id, "gather", "--evidence", json.dumps(GOOD), "--actor", "agent:bot", home=demo_home)
    assert done.returncode == 0 and "ready: extra" in done.stdout
    assert "\x1b[" not in done.stdout  # no colour codes when not on a terminal


def test_gate_failure_exact_text_and_exit_code(cli: Cli, demo_home: HomeBuilder) -> None:
    run_id = _start(cli, demo_home)
    result = cli("complete", run_id, "gather", "--evidence", '{"summary": "short", "severity": "S9"}',
                 "--actor", "agent:bot", home=demo_home)
    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr == (
        "error (gate_failed): evidence for step 'gather' does not pass its gate (2 problems):\n"
        "  /severity: 'S9' is not one of ['S1', 'S2', 'S3', 'S4']\n"
        "  /summary: 'short' is too short\n"
        f"Fix the evidence and submit it again. `tiergate guide {run_id}` says what each ready step needs.\n")


def test_refusal_exact_text(cli: Cli, demo_home: HomeBuilder) -> None:
    run_id = _start(cli, demo_home)
    result = cli("complete", run_id, "review", "--evidence", '{"approved": true}', "--actor", "human:alice",
                 home=demo_home)
    assert result.returncode == 1
    assert result.stderr == ("error (refused): step 'review' is not ready: it waits for gather, extra. "
                             "Finish those first.\n")
    answer = cli("log", run_id, "--json", home=demo_home).json["data"]
    assert answer[-1]["event"] == "refused" and answer[-1]["detail"]["reason"] == "not_ready"


def test_actor_from_environment_and_missing_actor(cli: Cli, demo_home: HomeBuilder) -> None:
    missing = cli("start", "demo", "--data", '{"ticket_id": "T-7"}', home=demo_home)
    assert missing.returncode == 2
    assert missing.stderr == ("error (actor_missing): no actor given. Say who is acting with --actor agent:NAME or "
                              "--actor human:NAME (or set TIERGATE_ACTOR).\n")
    from_env = cli("start", "demo", "--data", '{"ticket_id": "T-7"}', "--json", home=demo_home,
                   env={"TIERGATE_ACTOR": "human:alice"})
    assert from_env.json["data"]["started_by"] == "human:alice"
    system = cli("start", "demo", "--data", '{"ticket_id": "T-7"}', "--actor", "system:tiergate", home=demo_home)
    assert system.returncode == 2 and "reserved for the engine itself" in system.stderr


def test_data_and_evidence_from_files(cli: Cli, demo_home: HomeBuilder, tmp_path: Path) -> None:
    (tmp_path / "start.json").write_text('{"ticket_id": "T-99"}')
    (tmp_path / "evidence.json").write_text(json.dumps(GOOD))
    started = cli("start", "demo", "--data", f"@{tmp_path / 'start.json'}", "--actor", "agent:bot", "--json",
                  home=demo_home)
    run_id = started.json["data"]["id"]
    assert started.json["data"]["data"] == {"ticket_id": "T-99"}
    done = cli("complete", run_id, "gather", "--evidence", f"@{tmp_path / 'evidence.json'}", "--actor", "agent:bot",
               "--json", home=demo_home)
    assert done.json["data"]["ready"] == ["extra"]
    piped = cli("skip", run_id, "extra", "--reason", "stdin test", "--actor", "agent:bot", "--json", home=demo_home)
    assert piped.json["ok"] is True


def test_invalid_json_option_is_explained(cli: Cli, demo_home: HomeBuilder, tmp_path: Path) -> None:
    bad = cli("start", "demo", "--data", '{"ticket_id": }', "--actor", "agent:bot", home=demo_home)
    assert bad.returncode == 2
    assert bad.stderr.startswith("error (invalid_json): --data: invalid JSON at line 1 column 15: Expecting value.")
    missing = cli("start", "demo", "--data", f"@{tmp_path / 'nope.json'}", "--actor", "agent:bot", home=demo_home)
    assert missing.returncode == 2 and "cannot read" in missing.stderr


def test_check_exit_codes_and_format(cli: Cli, demo_home: HomeBuilder) -> None:
    good = cli("check", home=demo_home)
    assert good.returncode == 0 and good.stdout == "ok: 0 error(s), 0 warning(s)\n"
    demo_home.write("checklists/demo.yaml", (demo_home.root / "checklists/demo.yaml").read_text()
                    .replace("roles: [lead]", "roles: [leed]"))
    bad = cli("check", home=demo_home)
    assert bad.returncode == 1
    assert bad.stdout.splitlines() == [
        "checklists/demo.yaml:27: role 'leed' is not defined in tiers/roles.yaml. Defined roles: lead, reviewer.",
        "failed: 1 error(s), 0 warning(s)"]
    # A broken definition cannot be started, and the message says why.
    start = cli("start", "demo", "--data", '{"ticket_id": "T-7"}', "--actor", "agent:bot", home=demo_home)
    assert start.returncode == 1 and "checklists/demo.yaml:27: role 'leed'" in start.stderr


def test_log_verify_names_the_tampered_entry(cli: Cli, demo_home: HomeBuilder, db_url: str) -> None:
    run_id = _start(cli, demo_home)
    assert cli("log", "verify", home=demo_home).stdout.startswith("ok: 3 entries in 1 runs")
    engine = sa.create_engine(db_url)
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE log_entries SET event = 'completed' WHERE run_id = :r AND seq = 2"), {"r": run_id})
        entry_id = conn.execute(sa.text("SELECT id FROM log_entries WHERE run_id = :r AND seq = 2"), {"r": run_id}).scalar()
    engine.dispose()
    result = cli("log", "verify", home=demo_home)
    assert result.returncode == 1
    assert result.stdout == (f"broken: run {run_id}, seq 2 (entry id {entry_id}): its content does not match its "
                             "hash: the entry was edited\n")
    as_json = cli("log", "verify", "--json", home=demo_home)
    assert as_json.returncode == 1 and as_json.json["error"]["code"] == "log_tampered"


def test_schema_checklist_is_the_shipped_schema(cli: Cli, demo_home: HomeBuilder) -> None:
    printed = json.loads(cli("schema", "checklist", home=demo_home).stdout)
    shipped = json.loads((REPO / "src/tiergate/schemas/checklist.schema.json").read_text())
    assert printed == shipped == json.loads(json.dumps(checklist_json_schema()))


def test_python_dash_m_and_version(cli: Cli) -> None:
    result = cli("--version")
    assert result.returncode == 0 and result.stdout.startswith("tiergate, version ")
