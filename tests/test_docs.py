"""Docs that cannot drift: every command has help and an entry in docs/cli.md; README matches CI."""

from __future__ import annotations

import importlib
import re

import click
import pytest

from support import REPO
from tiergate.cli import COMMANDS as COMMANDS_TABLE
from tiergate.cli import cli


def _commands(group: click.Group, prefix: str = "") -> list[tuple[str, click.Command]]:
    found = []
    ctx = click.Context(group)
    for name in sorted(group.list_commands(ctx)):
        command = group.get_command(ctx, name)
        assert command is not None, name
        path = f"{prefix}{name}"
        if isinstance(command, click.Group):
            found.extend(_commands(command, path + " "))
        else:
            found.append((path, command))
    return found


COMMANDS = _commands(cli)


def test_there_are_commands() -> None:
    names = {name for name, _ in COMMANDS}
    assert {"check", "processes", "start", "status", "complete", "skip", "cancel", "runs", "log show", "log verify", "db upgrade",
            "schema checklist"} <= names


@pytest.mark.parametrize("name, command", COMMANDS, ids=[n for n, _ in COMMANDS])
def test_every_command_has_help_and_a_docs_entry(name: str, command: click.Command) -> None:
    assert command.help and len(command.help.strip()) > 20, f"`tiergate {name}` needs help text"
    docs = (REPO / "docs" / "cli.md").read_text()
    assert re.search(rf"^### `tiergate {re.escape(name)}[ `]", docs, re.M), f"docs/cli.md has no entry for {name}"
    option_names = {o for p in command.params if isinstance(p, click.Option) for o in p.opts}
    assert "--json" in option_names and "--home" in option_names, f"`tiergate {name}` must take --json and --home"


def test_the_command_list_needs_no_imports_and_says_what_each_command_does() -> None:
    """`tiergate --help` lists each command from COMMANDS without importing it: the summaries there
    must be the commands' own first lines."""
    for name, (module, attribute, summary) in COMMANDS_TABLE.items():
        command = getattr(importlib.import_module(module), attribute)
        assert command.get_short_help_str(1000) == summary, name


def test_readme_test_command_is_what_ci_runs() -> None:
    readme = (REPO / "README.md").read_text()
    blocks = re.findall(r"```sh\n(.*?)\n```", readme, re.S)
    assert len(blocks) >= 3
    test_command = next(b for b in blocks if "pytest" in b).strip()
    ci = (REPO / ".ci" / "run").read_text()
    assert f"test_command() {{ {test_command}; }}" in ci
    assert blocks[0].startswith("python3 -m pip install . && tiergate start support-triage")
