"""docs/agents.md cannot drift: its client configuration starts a working server, and both snippets agree."""

from __future__ import annotations

import json
import re
import shlex
import shutil
from pathlib import Path
from typing import Any

import anyio
from mcp import ClientSession, StdioServerParameters, stdio_client

from support import REPO

DOCS = (REPO / "docs" / "agents.md").read_text()


def _json_config() -> dict[str, Any]:
    block = next(b for b in re.findall(r"```json\n(.*?)\n```", DOCS, re.S) if "mcpServers" in b)
    return json.loads(block)["mcpServers"]["tiergate"]


def test_the_claude_code_command_runs_what_the_json_entry_runs() -> None:
    line = next(line for line in DOCS.splitlines() if line.startswith("claude mcp add "))
    tokens = shlex.split(line)
    command = tokens[tokens.index("--") + 1:]
    entry = _json_config()
    assert command[0] == entry["command"]
    assert command[1:-1] == entry["args"][:-1]  # the same server; only the agent's name differs
    assert command[-1].startswith("agent:") and entry["args"][-1].startswith("agent:")


def test_the_documented_json_entry_starts_a_working_server(repo_home: Path, db_url: str, tmp_path: Path) -> None:
    entry = _json_config()
    assert shutil.which(entry["command"]), f"`{entry['command']}` is not on PATH"
    args = [str(repo_home) if arg == "/srv/tiergate" else arg for arg in entry["args"]]
    assert args != entry["args"], "the example home path changed; update this test"
    env = {**entry["env"], "TIERGATE_DATABASE_URL": db_url}  # the documented keys, with the test's database
    params = StdioServerParameters(command=entry["command"], args=args, env=env, cwd=str(tmp_path))

    async def main() -> None:
        with anyio.fail_after(120), (tmp_path / "server.stderr").open("w") as stderr:
            async with stdio_client(params, errlog=stderr) as (read, write), ClientSession(read, write) as session:
                init = await session.initialize()
                assert init.server_info.name == "tiergate" and "get_guidance(run)" in (init.instructions or "")
                answer = await session.call_tool("list_processes", {})
                assert answer.structured_content is not None and answer.structured_content["ok"] is True
                assert "support-triage" in {p["id"] for p in answer.structured_content["data"]}
                mine = await session.call_tool("list_my_runs", {})
                assert mine.structured_content == {"ok": True, "data": []}

    anyio.run(main)


def test_every_tool_is_documented() -> None:
    from tiergate.mcpserver import build_server
    from tiergate.actors import Actor
    from tiergate.engine import Engine

    server = build_server(Engine(home=REPO, database_url="sqlite://"), Actor.parse("agent:docs"))
    tools = anyio.run(server.list_tools)
    for tool in tools:
        assert f"| `{tool.name}(" in DOCS, f"docs/agents.md does not document the tool {tool.name}"
