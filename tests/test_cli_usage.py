"""One envelope, always: every command answers bad arguments with code `usage` and exit 2, and
every error code exits as docs/cli.md's table says."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from typing import Callable

import click
import pytest

from support import REPO, CLIResult, HomeBuilder
from tiergate.cli import cli as tiergate_cli

Cli = Callable[..., CLIResult]


def _leaf_commands(group: click.Group, prefix: tuple[str, ...] = ()) -> list[tuple[tuple[str, ...], click.Command]]:
    found = []
    ctx = click.Context(group)
    for name in sorted(group.list_commands(ctx)):
        command = group.get_command(ctx, name)
        assert command is not None
        path = prefix + (name,)
        found.append((path, command))
        if isinstance(command, click.Group):
            found.extend(_leaf_commands(command, path))
    return found


COMMANDS = _leaf_commands(tiergate_cli)


def _required_arguments(command: click.Command) -> list[click.Argument]:
    return [p for p in command.params if isinstance(p, click.Argument) and p.required]


def _bad_invocations() -> list[tuple[str, list[str]]]:
    """For each command: an unknown option, and (where it has any) its arguments left out."""
    cases = []
    for path, command in COMMANDS:
        name = " ".join(path)
        filler = ["x"] * len(_required_arguments(command))
        cases.append((f"{name}: unknown option", [*path, *filler, "--no-such-option", "--json"]))
        if _required_arguments(command):
            cases.append((f"{name}: missing argument", [*path, "--json"]))
        required_options = [p for p in command.params if isinstance(p, click.Option) and p.required]
        if required_options:
            cases.append((f"{name}: missing {required_options[0].opts[0]}", [*path, *filler, "--json"]))
    cases.append(("no such command", ["no-such-command", "--json"]))
    return cases


@pytest.mark.parametrize("args", [a for _, a in _bad_invocations()], ids=[n for n, _ in _bad_invocations()])
def test_bad_arguments_answer_the_envelope_with_usage_and_exit_2(args: list[str], tmp_path: object) -> None:
    proc = subprocess.run([sys.executable, "-m", "tiergate", *args], capture_output=True, text=True,
                          cwd=tmp_path, env={"PATH": "/usr/bin:/bin", "NO_COLOR": "1"}, timeout=120)
    assert proc.returncode == 2, (proc.stdout, proc.stderr)
    answer = json.loads(proc.stdout)
    assert answer["ok"] is False and answer["error"]["code"] == "usage"
    message = answer["error"]["message"]
    assert "--help' for its options." in message and "Traceback" not in proc.stderr
    assert answer["error"]["details"]["usage"].startswith("Usage: tiergate")


def test_without_json_a_usage_error_is_clicks_text_on_stderr(tmp_path: object) -> None:
    proc = subprocess.run([sys.executable, "-m", "tiergate", "skip", "RUN", "STEP"], capture_output=True, text=True,
                          cwd=tmp_path, timeout=120)
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr.endswith("Error: Missing option '--reason'.\n")


def _documented_exit_codes() -> dict[str, int]:
    table = (REPO / "docs" / "cli.md").read_text(encoding="utf-8").split("## Error codes", 1)[1].split("\n## ", 1)[0]
    codes: dict[str, int] = {}
    for row in table.splitlines():
        cells = [c.strip() for c in row.strip().strip("|").split("|")]
        if len(cells) < 4 or not cells[0].startswith("`"):
            continue
        for code in re.findall(r"`([a-z_]+)`", cells[0]):
            codes[code] = int(cells[3])
    return codes


def test_the_docs_give_every_code_an_exit_status() -> None:
    codes = _documented_exit_codes()
    assert codes["usage"] == 2 and codes["actor_missing"] == 2 and codes["invalid_json"] == 2
    assert codes["invalid_data"] == 1 and codes["gate_failed"] == 1 and codes["refused"] == 1
    assert codes["not_found"] == 1


def test_exit_statuses_match_the_docs(cli: Cli, demo_home: HomeBuilder) -> None:
    documented = _documented_exit_codes()
    started = cli("start", "demo", "--data", '{"ticket_id": "T-1"}', "--actor", "agent:bot", "--json", home=demo_home)
    run_id = started.json["data"]["id"]
    attempts = [
        ["start", "demo", "--data", '{"ticket_id": "nope"}', "--actor", "agent:bot"],       # invalid_data
        ["start", "demo", "--data", "[1, 2]", "--actor", "agent:bot"],                     # invalid_data
        ["start", "demo", "--data", "{not json", "--actor", "agent:bot"],                  # invalid_json
        ["start", "demo", "--data", '{"ticket_id": "T-2"}'],                               # actor_missing
        ["complete", run_id, "gather", "--evidence", "{}", "--actor", "agent:bot"],        # gate_failed
        ["complete", run_id, "review", "--evidence", "{}", "--actor", "agent:bot"],        # refused
        ["status", "nope"],                                                                # not_found
        ["complete", run_id, "--actor", "agent:bot"],                                      # usage (no step)
    ]
    seen = set()
    for args in attempts:
        result = cli(*args, "--json", home=demo_home)
        code = result.json["error"]["code"]
        seen.add(code)
        assert result.returncode == documented[code], (args, code, result.returncode)
    assert seen == {"invalid_data", "invalid_json", "actor_missing", "gate_failed", "refused", "not_found", "usage"}


def _codes_in_the_source() -> set[str]:
    found: set[str] = set()
    for path in (REPO / "src" / "tiergate").rglob("*.py"):
        text = path.read_text(encoding="utf-8")
        found.update(re.findall(r'\bcode="([a-z_]+)"', text))
        found.update(re.findall(r'^    code = "([a-z_]+)"$', text, re.M))
    return found - {"error"}  # the base class's placeholder, never raised as such


def test_every_error_code_the_engine_raises_is_in_the_docs_table() -> None:
    missing = _codes_in_the_source() - set(_documented_exit_codes())
    assert not missing, f"docs/cli.md's error code table lacks: {sorted(missing)}"
