"""`POST /api/signals` and the MCP tool `send_signal` through a real `tiergate serve`: the token's principal
is the sender, a claimed other actor is refused as for messages, and a signal that reaches nothing is
answered 0 and recorded at its door. `GET /api/signals` lists the broadcasts for auditors, and a refusal
the engine itself records (data over a limit) names the door that called, not `engine`."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest
from serving import issue_token, running_server
from support import CLIResult, HomeBuilder
from test_server import Server, _answer, mcp_session
from test_tier1_signals import STARTER, WAITER, process
from tier1_helpers import ROLES, tier1_home

Cli = Callable[..., CLIResult]


@pytest.fixture
def signal_home(tmp_path: Path) -> HomeBuilder:
    home = tier1_home(tmp_path / "home", {"waiter": process("waiter", WAITER), "starter": process("starter", STARTER)})
    home.write("tiers/roles.yaml", ROLES + "  auditor:\n    description: Reads every run.\n"
               "    members: [human:audrey]\n")
    return home


@pytest.fixture
def signal_server(signal_home: HomeBuilder, db_url: str, tmp_path: Path) -> Iterator[Server]:
    with running_server(signal_home.root, db_url, tmp_path / "server.log") as running:
        yield running


def test_a_signal_through_the_api_and_mcp_over_http(signal_server: Server, signal_home: HomeBuilder,
                                                     cli: Cli) -> None:
    token = issue_token(cli, signal_home, "agent:ci")
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


def test_the_broadcasts_over_the_api_and_the_door_of_refusals_the_engine_records(
        signal_server: Server, signal_home: HomeBuilder, cli: Cli, tmp_path: Path) -> None:
    agent, auditor = issue_token(cli, signal_home, "agent:ci"), issue_token(cli, signal_home, "human:audrey")
    wide = {"x": [0] * 55_000}  # over input_values: refused by the engine before any run is reached
    with signal_server.client(agent) as http:
        refused = http.get("/api/signals")
        assert refused.status_code == 403 and refused.json()["error"]["details"]["reason"] == "actor_not_allowed"
        over = http.post("/api/signals", json={"name": "go_live", "data": wide})
        assert over.status_code == 400 and over.json()["error"]["code"] == "limit_exceeded", over.text[:300]
        started = http.post("/api/runs", json={"process": "waiter", "data": wide})
        assert started.status_code == 400 and started.json()["error"]["code"] == "limit_exceeded"

    async def send() -> dict[str, Any]:
        async with mcp_session(signal_server.url, agent) as session:
            return _answer(await session.call_tool("send_signal", {"name": "go_live", "data": wide}))

    assert anyio.run(send)["error"]["code"] == "limit_exceeded"
    data_file = tmp_path / "wide.json"
    data_file.write_text(json.dumps(wide), encoding="utf-8")
    direct = cli("signal", "go_live", "--data", f"@{data_file}", "--actor", "human:bob", "--json", home=signal_home)
    assert direct.returncode != 0 and direct.json["error"]["code"] == "limit_exceeded", direct
    rows = cli("log", "refusals", "--json", home=signal_home).json["data"]
    assert [(r["door"], r["attempt"], r["code"], r["actor"]) for r in rows][:5] == [  # newest first
        ("cli", "signal", "limit_exceeded", "human:bob"), ("mcp", "signal", "limit_exceeded", "agent:ci"),
        ("api", "start", "limit_exceeded", "agent:ci"), ("api", "signal", "limit_exceeded", "agent:ci"),
        ("api", "signals", "refused", "agent:ci")]
    assert not any(r["door"] == "engine" for r in rows)

    with signal_server.client(auditor) as http:
        sent = http.post("/api/signals", json={"name": "go_live", "data": {"release": "R-3"}}).json()["data"]
        assert sent["reached"] == 1 and sent["broadcast"]  # the starter process
        listed = http.get("/api/signals")
        assert listed.status_code == 200 and listed.json()["data"] == {"pending": 0, "broadcasts": []}
        every = http.get("/api/signals", params={"all": "1"}).json()["data"]
        [shown] = [b for b in every["broadcasts"] if b["broadcast"] == sent["broadcast"]]
        assert (shown["signal"], shown["run"], shown["from_outside"], shown["sender"], shown["outcome"]["reached"]) \
            == ("go_live", None, True, "human:audrey", 1) and shown["delivered_at"]
        assert http.get("/api/signals", params={"all": "yes"}).status_code == 400
    remote = {"TIERGATE_URL": signal_server.url, "TIERGATE_TOKEN": auditor}
    client = cli("signals", "--all", "--json", home=signal_home, env=remote)  # the CLI as a client
    assert client.returncode == 0 and sent["broadcast"] in [b["broadcast"] for b in client.json["data"]["broadcasts"]]
    barred = cli("signals", "--json", home=signal_home, env={**remote, "TIERGATE_TOKEN": agent})
    assert barred.returncode == 1 and barred.json["error"]["details"]["reason"] == "actor_not_allowed", barred
    assert "Traceback" not in signal_server.errlog.read_text()


def test_a_signal_from_outside_over_the_signal_runs_budget_is_recorded_as_refused_at_its_door(
        signal_home: HomeBuilder, db_url: str, cli: Cli, tmp_path: Path) -> None:
    """The runs and processes the budget kept it from are listed in the answer, and the attempt is a row of
    `tiergate log refusals` at the sender's door (refused, signal_budget), as a thrown one is a `refused`
    entry on the run that threw it."""
    token = issue_token(cli, signal_home, "agent:ci")
    budget = {"TIERGATE_LIMIT_SIGNAL_RUNS": "1"}
    with running_server(signal_home.root, db_url, tmp_path / "server.log", env=budget) as server, \
            server.client(token) as http:
        runs = [http.post("/api/runs", json={"process": "waiter", "data": {}}).json()["data"]["id"] for _ in range(2)]
        for run in runs:
            assert http.post(f"/api/runs/{run}/steps/submit/complete", json={"evidence": {}}).status_code == 200
        sent = http.post("/api/signals", json={"name": "go_live", "data": {}})
        assert sent.status_code == 200, sent.text
        answer = sent.json()["data"]
        assert answer["reached"] == 1 and len(answer["not_reached_over_budget"]) == 2, answer  # a run, the starter
        assert "Traceback" not in server.errlog.read_text()
    direct = cli("signal", "go_live", "--actor", "human:bob", "--json", home=signal_home, env=budget)
    assert direct.returncode == 0 and direct.json["data"]["reached"] == 1, direct  # the run still waiting
    assert direct.json["data"]["not_reached_over_budget"] == ["process:starter"]
    rows = cli("log", "refusals", "--json", home=signal_home).json["data"]
    assert [(r["door"], r["attempt"], r["code"], r["problem"], r["actor"], r["credential"][:6]) for r in rows] == [
        ("cli", "signal", "refused", "signal_budget", "human:bob", "direct"),
        ("api", "signal", "refused", "signal_budget", "agent:ci", "token:")]
