"""Reads limited by role (tiergate.reads through tiergate.operations), through real sockets: httpx
for the API, the MCP SDK's streamable HTTP client, and the CLI in client mode."""

from __future__ import annotations

from typing import Any, Callable

import anyio
import pytest

from support import DEMO, ROLES, CLIResult, HomeBuilder
from test_server import GATHER, Server, _answer, _issue, mcp_session, server  # noqa: F401 - the fixture
from tiergate.operations import Caller, Operations

PRIVATE = """\
id: private
title: Private work
owner: lead
expected_minutes: 10
steps:
  - id: work
    title: Do the work
    actors: [agent]
    roles: [reviewer]
    done_when: {type: object}
  - id: approve
    title: Approve it
    actors: [human]
    roles: [lead]
    after: [work]
    done_when: {type: object, required: [approved], properties: {approved: {const: true}}}
"""

AUDITORS = """\
  auditor:
    description: Reads every run, the log, metrics and gaps.
    members: [human:audrey]
"""


@pytest.fixture
def demo_home(home: HomeBuilder) -> HomeBuilder:
    home.checklist("demo", DEMO)
    home.checklist("private", PRIVATE)
    home.write("tiers/roles.yaml", ROLES + AUDITORS)
    return home


def _tokens(cli: Callable[..., CLIResult], home: HomeBuilder, *principals: str) -> dict[str, str]:
    return {p: _issue(cli, home, p)["token"] for p in principals}


def test_a_run_one_may_not_read_is_not_found_through_the_api(server: Server, demo_home: HomeBuilder,  # noqa: F811
                                                             cli: Callable[..., CLIResult], make_engine: Any) -> None:
    tokens = _tokens(cli, demo_home, "agent:bot", "agent:stranger", "agent:reviewer-bot", "human:alice",
                     "human:audrey", "human:dave")
    with server.client(tokens["agent:bot"]) as http:
        started = http.post("/api/runs", json={"process": "private", "data": {}})
        assert started.status_code == 201, started.text
        run = started.json()["data"]["id"]
        assert http.get(f"/api/runs/{run}").status_code == 200  # its starter reads it
    with server.client(tokens["agent:stranger"]) as http:
        nothing = http.get("/api/runs/0123456789ab").json()
        for path in (f"/api/runs/{run}", f"/api/runs/{run}/guide", f"/api/runs/{run}/log"):
            answer = http.get(path)
            assert answer.status_code == 404, (path, answer.text)
            assert answer.json()["error"]["message"] == nothing["error"]["message"].replace("0123456789ab", run)
        for path, body in ((f"/api/runs/{run}/steps/work/complete", {"evidence": {}}),
                           (f"/api/runs/{run}/cancel", {"reason": "mine now"}),
                           (f"/api/runs/{run}/steps/work/claim", {})):
            answer = http.post(path, json=body)
            assert answer.status_code == 404 and answer.json()["error"]["code"] == "not_found", (path, answer.text)
        assert run not in {r["id"] for r in http.get("/api/runs").json()["data"]}
        assert run not in {e["run"] for e in http.get("/api/log").json()["data"]}
        assert http.get("/api/inbox").json()["data"] == []
        refused = http.get("/api/metrics")
        assert refused.status_code == 403 and refused.json()["error"]["details"]["reason"] == "actor_not_allowed"
        assert http.get("/api/gaps").status_code == 403
    for reader in ("agent:reviewer-bot", "human:alice", "human:audrey"):  # a step's role, the owner's, auditor
        with server.client(tokens[reader]) as http:
            assert http.get(f"/api/runs/{run}").status_code == 200, reader
            assert run in {r["id"] for r in http.get("/api/runs").json()["data"]}, reader
    with server.client(tokens["human:audrey"]) as http:
        assert http.get("/api/metrics").status_code == 200
        assert http.get("/api/log/verify").json()["data"]["ok"] is True
        assert run in {e["run"] for e in http.get("/api/log").json()["data"]}
    with server.client(tokens["human:alice"]) as http:  # the owner's role: its process's metrics only
        assert http.get("/api/metrics", params={"process": "private"}).status_code == 200
        assert http.get("/api/metrics").status_code == 403
    with server.client(tokens["human:dave"]) as http:  # a person in no role: still not theirs
        assert http.get(f"/api/runs/{run}").status_code == 404
        assert http.post(f"/api/runs/{run}/cancel", json={"reason": "x"}).status_code == 404

    log = make_engine(demo_home).log(run)
    assert [(e["actor"], e["detail"]["attempt"], e["detail"]["reason"]) for e in log if e["event"] == "refused"] == [
        ("agent:stranger", "complete", "actor_not_allowed"), ("agent:stranger", "cancel", "actor_not_allowed"),
        ("agent:stranger", "claim", "actor_not_allowed"), ("human:dave", "cancel", "not_a_reader")]
    assert [e["event"] for e in log][-1] == "refused"  # nothing else happened to the run
    # The operator on the database directly reads everything.
    assert Operations(make_engine(demo_home)).status(Caller(), run)["id"] == run


def test_acting_in_a_run_or_being_able_to_act_now_lets_one_read_it(server: Server,  # noqa: F811
                                                                    demo_home: HomeBuilder,
                                                                    cli: Callable[..., CLIResult]) -> None:
    tokens = _tokens(cli, demo_home, "agent:bot", "agent:helper", "agent:late")
    with server.client(tokens["agent:bot"]) as http:
        run = http.post("/api/runs", json={"process": "demo", "data": {"ticket_id": "T-1"}}).json()["data"]["id"]
    with server.client(tokens["agent:late"]) as http:  # anyone may gather: readable while it is ready
        assert http.get(f"/api/runs/{run}").status_code == 200
    with server.client(tokens["agent:helper"]) as http:
        assert http.post(f"/api/runs/{run}/steps/gather/complete", json={"evidence": GATHER}).status_code == 200
        assert http.post(f"/api/runs/{run}/steps/extra/skip", json={"reason": "not needed"}).status_code == 200
        refused = http.post(f"/api/runs/{run}/steps/review/complete", json={"evidence": {"approved": True}})
        assert refused.status_code == 403  # a reader hears the true refusal
        assert http.get(f"/api/runs/{run}").status_code == 200  # acted in it
    with server.client(tokens["agent:late"]) as http:  # only a person of the lead role may act now
        assert http.get(f"/api/runs/{run}").status_code == 404
        http.post(f"/api/runs/{run}/steps/review/complete", json={"evidence": {"approved": True}})
        assert http.get(f"/api/runs/{run}").status_code == 404  # a refused attempt gives no right to read


def test_mcp_over_http_and_the_cli_client_answer_not_found_too(server: Server,  # noqa: F811
                                                               demo_home: HomeBuilder,
                                                               cli: Callable[..., CLIResult]) -> None:
    tokens = _tokens(cli, demo_home, "agent:bot", "agent:stranger", "agent:reviewer-bot")
    with server.client(tokens["agent:bot"]) as http:
        run = http.post("/api/runs", json={"process": "private", "data": {}}).json()["data"]["id"]

    async def ask(token: str) -> dict[str, dict[str, Any]]:
        async with mcp_session(server.url, token) as session:
            return {tool: _answer(await session.call_tool(tool, arguments)) for tool, arguments in (
                ("get_run", {"run": run}), ("get_guidance", {"run": run}), ("list_my_work", {}),
                ("complete_step", {"run": run, "step": "work", "evidence": {}}))}

    stranger = anyio.run(ask, tokens["agent:stranger"])
    for tool in ("get_run", "get_guidance", "complete_step"):
        assert stranger[tool]["ok"] is False and stranger[tool]["error"]["code"] == "not_found", stranger[tool]
    assert stranger["list_my_work"]["data"] == []
    reviewer = anyio.run(ask, tokens["agent:reviewer-bot"])
    assert reviewer["get_run"]["data"]["id"] == run
    assert [i["run"] for i in reviewer["list_my_work"]["data"]] == [run]

    as_stranger = {"TIERGATE_URL": server.url, "TIERGATE_TOKEN": tokens["agent:stranger"]}
    status = cli("status", run, "--json", home=demo_home, env=as_stranger)
    assert status.returncode == 1 and status.json["error"]["code"] == "not_found", status
    as_bot = {"TIERGATE_URL": server.url, "TIERGATE_TOKEN": tokens["agent:bot"]}
    assert cli("status", run, "--json", home=demo_home, env=as_bot).json["data"]["id"] == run
