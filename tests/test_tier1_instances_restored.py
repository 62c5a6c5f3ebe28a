"""Multi-instance and loop tasks whose runs are restored in another process (each CLI command is one)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from support import CLIResult
from test_tier1_instances import camunda_mi, repeated
from tier1_helpers import GATE_NOTE, bpmn, chain, tier1_home, user


def test_parallel_instances_completed_from_separate_commands_merge_and_end_the_activity(
        tmp_path: Path, cli: Callable[..., CLIResult]) -> None:
    body = ('<bpmn:startEvent id="start"/>'
            + repeated("verify", camunda_mi("tenants", "tenant", condition='note == "stop"'), gate=GATE_NOTE)
            + user("close") + '<bpmn:endEvent id="end"/>' + chain("start", "verify", "close", "end"))
    home = tier1_home(tmp_path / "home", {"roll": bpmn("roll", body)})
    started = cli("start", "roll", "--data", json.dumps({"tenants": ["acme", "globex", "initech"]}),
                  "--actor", "agent:a", "--json", home=home)
    assert started.returncode == 0, started
    run = started.json["data"]["id"]
    for index, note in ((1, "globex ok"), (0, "acme ok")):
        result = cli("complete", run, f"verify[{index}]", "--evidence", json.dumps({"note": note}),
                     "--actor", "agent:a", "--json", home=home)
        assert result.returncode == 0, result
    assert result.json["data"]["ready"] == ["verify[2]"]
    result = cli("complete", run, "verify[2]", "--evidence", json.dumps({"note": "initech ok"}),
                 "--actor", "agent:a", "--json", home=home)
    assert result.returncode == 0, result
    data = result.json["data"]
    assert data["ready"] == ["close"] and data["data"]["note"] == "initech ok"  # merged into the activity

    # The completion condition is read in a new process too: the first "stop" ends the activity.
    started = cli("start", "roll", "--data", json.dumps({"tenants": ["acme", "globex"]}), "--actor", "agent:a",
                  "--json", home=home)
    run = started.json["data"]["id"]
    result = cli("complete", run, "verify[0]", "--evidence", json.dumps({"note": "stop"}), "--actor", "agent:a",
                 "--json", home=home)
    assert result.returncode == 0, result
    assert result.json["data"]["ready"] == ["close"]
    log = cli("log", run, "--json", home=home).json["data"]
    assert [(e["event"], e["step"]) for e in log if e["event"] == "step_skipped"] == [("step_skipped", "verify[1]")]
