"""`POST /api/signals` and the MCP tool `send_signal` through a real `tiergate serve`: the token's principal
is the sender, a claimed other actor is refused as for messages, and a signal that reaches nothing is
answered 0 and recorded at its door."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest
from serving import running_server
from support import CLIResult, HomeBuilder
from test_server import Server, _answer, mcp_session
from test_tier1_signals import STARTER, WAITER, process
from tier1_helpers import tier1_home

Cli = Callable[..., CLIResult]


@pytest.fixture
def signal_home(tmp_path: Path) -> HomeBuilder:
    return tier1_home(tmp_path / "home", {"waiter": process("waiter", WAITER), "starter": process("starter", STARTER)})


@pytest.fixture
def signal_server(signal_home: HomeBuilder, db_url: str, tmp_path: Path) -> Iterator[Server]:
    with running_server(signal_home.root, db_url, tmp_path / "server.log") as running:
        yield running


def _token(cli: Cli, home: HomeBuilder, principal: str) -> str:
    issued = cli("tokens", "issue", principal, "--json", home=home)
    assert issued.returncode == 0, issued
    return str(issued.json["data"]["token"])


def test_a_signal_through_the_api_and_mcp_over_http(signal_server: Server, signal_home: HomeBuilder,
                                                     cli: Cli) -> None:
    token = _token(cli, signal_home, "agent:ci")
    with signal_server.client(token) as http:
        run = http.post("/api/runs", json={"process": "waiter", "data": {}}).json()["data"]["id"]
        assert http.post(f"/api/runs/{run}/steps/submit/complete", json={"evidence": {}}).status_code == 200
        claimed = http.post("/api/signals", json={"name": "go_live", "actor": "human:x"})
        assert claimed.status_code == 403 and claimed.json()["error"]["code"] == "actor_mismatch", claimed.text
        sent = http.post("/api/signals", json={"name": "go_live", "data": {"release": "R-2"}})
        assert sent.status_code == 200, sent.text
        answer = sent.json()["data"]
        assert answer["moved"] == [run] and len(answer["started"]) == 1 and answer["reached"] == 2
        assert http.get(f"/api/runs/{run}").json()["data"]["ready"] == ["deploy"]
        log = http.get(f"/api/runs/{run}/log").json()["data"]
        [received] = [e for e in log if e["event"] == "signal_received"]
        assert received["detail"]["sender"] == "agent:ci" and received["actor"] == "agent:ci"

    async def send() -> dict[str, Any]:
        async with mcp_session(signal_server.url, token) as session:
            return _answer(await session.call_tool("send_signal", {"name": "nobody_listens", "data": {}}))

    unreached = anyio.run(send)
    assert unreached["ok"] is True and unreached["data"]["reached"] == 0, unreached
    rows = cli("log", "refusals", "--json", home=signal_home).json["data"]
    assert [(r["door"], r["attempt"], r["code"], r["problem"], r["actor"]) for r in rows][0] == (
        "mcp", "signal", "signal_unreached", "nobody_listens", "agent:ci")
    client = cli("signal", "go_live", "--json", home=signal_home,
                 env={"TIERGATE_URL": signal_server.url, "TIERGATE_TOKEN": token})  # the CLI as a client
    assert client.returncode == 0 and client.json["data"]["reached"] == 1, client  # the starter process only
    assert "Traceback" not in signal_server.errlog.read_text()
