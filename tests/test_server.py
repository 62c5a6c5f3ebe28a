"""`tiergate serve` through real sockets: a server subprocess on 127.0.0.1, httpx for the JSON API,
the official MCP SDK's streamable HTTP client for /mcp."""

from __future__ import annotations

import json
import time
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, AsyncIterator, Callable, Iterator

import anyio
import httpx2 as httpx
import pytest
from mcp import ClientSession
from mcp.client.streamable_http import streamable_http_client

from serving import Server, free_port, running_server  # noqa: F401 - other tests import them from here
from support import CLIResult, HomeBuilder
from tiergate.engine import Engine

GATHER = {"summary": "The export fails for every client.", "severity": "S3"}


@pytest.fixture
def server(demo_home: HomeBuilder, db_url: str, tmp_path: Path) -> Iterator[Server]:
    with running_server(demo_home.root, db_url, tmp_path / "server.log") as running:
        yield running


def _issue(cli: Callable[..., CLIResult], home: HomeBuilder, principal: str) -> dict[str, Any]:
    result = cli("tokens", "issue", principal, "--json", home=home)
    assert result.returncode == 0, result
    return dict(result.json["data"])


def _log_text(engine: Engine) -> str:
    return json.dumps(engine.log())


def test_healthz_and_the_openapi_document_need_no_token(server: Server) -> None:
    with server.client() as http:
        health = http.get("/healthz")
        assert health.status_code == 200 and health.json()["data"]["status"] == "ok"
        document = http.get("/api/openapi.json").json()
    assert document["openapi"].startswith("3.")
    for path in ("/api/runs", "/api/runs/{run}", "/api/runs/{run}/steps/{step}/complete", "/api/log/verify"):
        assert path in document["paths"], path


def test_no_token_or_a_bad_one_is_401_and_nothing_else(server: Server, demo_home: HomeBuilder,
                                                       cli: Callable[..., CLIResult], make_engine: Any) -> None:
    bot = _issue(cli, demo_home, "agent:bot")
    with server.client(bot["token"]) as http:
        run = http.post("/api/runs", json={"process": "demo", "data": {"ticket_id": "T-1"}}).json()["data"]["id"]
    engine = make_engine(demo_home)
    before = engine.log(run)
    for headers in ({}, {"Authorization": "Bearer tg_" + "x" * 43}, {"Authorization": "Basic abc"},
                    {"Authorization": bot["token"]}):
        with httpx.Client(base_url=server.url, headers=headers) as http:
            for method, path, body in (("POST", f"/api/runs/{run}/steps/gather/complete", {"evidence": GATHER}),
                                       ("GET", "/api/runs", None), ("POST", "/mcp", {"jsonrpc": "2.0"}),
                                       ("GET", "/metrics", None)):
                answer = http.request(method, path, json=body)
                assert answer.status_code == 401, (headers, path, answer.text)
                assert answer.json()["error"]["code"] == "unauthorized"
                assert bot["token"] not in answer.text
    assert engine.log(run) == before  # no log entry


def test_an_agents_token_cannot_complete_a_persons_step_and_cannot_claim_to_be_one(
        server: Server, demo_home: HomeBuilder, cli: Callable[..., CLIResult], make_engine: Any) -> None:
    bot, alice = _issue(cli, demo_home, "agent:bot"), _issue(cli, demo_home, "human:alice")
    with server.client(bot["token"]) as http:
        started = http.post("/api/runs", json={"process": "demo", "data": {"ticket_id": "T-1"}})
        assert started.status_code == 201, started.text
        run = started.json()["data"]["id"]
        assert started.json()["data"]["started_by"] == "agent:bot"
        done = http.post(f"/api/runs/{run}/steps/gather/complete", json={"evidence": GATHER})
        assert done.status_code == 200 and done.json()["ok"], done.text
        assert http.post(f"/api/runs/{run}/steps/extra/skip", json={"reason": "not needed"}).status_code == 200
        refused = http.post(f"/api/runs/{run}/steps/review/complete", json={"evidence": {"approved": True}})
        assert refused.status_code == 403
        assert refused.json()["error"]["details"]["reason"] == "actor_not_allowed"
        mismatch = http.post(f"/api/runs/{run}/steps/review/complete",
                             json={"evidence": {"approved": True}, "actor": "human:alice"})
        assert mismatch.status_code == 403 and mismatch.json()["error"]["code"] == "actor_mismatch"
    with server.client(alice["token"]) as http:
        approved = http.post(f"/api/runs/{run}/steps/review/complete", json={"evidence": {"approved": True}})
        assert approved.status_code == 200 and approved.json()["data"]["status"] == "completed", approved.text
        log = http.get(f"/api/runs/{run}/log").json()["data"]
    refusals = [(e["actor"], e["detail"]["reason"]) for e in log if e["event"] == "refused"]
    assert refusals == [("agent:bot", "actor_not_allowed"), ("agent:bot", "actor_mismatch")]
    review = [e for e in log if e["event"] == "step_completed" and e["step"] == "review"][0]
    assert (review["actor"], review["door"]) == ("human:alice", f"token:{alice['id']}")
    assert {e["door"] for e in log if e["actor"] == "agent:bot"} == {f"token:{bot['id']}"}
    engine = make_engine(demo_home)
    assert engine.verify_log()["ok"]
    text = _log_text(engine) + server.errlog.read_text()
    assert bot["token"] not in text and alice["token"] not in text


def test_a_revoked_token_stops_working_at_once(server: Server, demo_home: HomeBuilder,
                                               cli: Callable[..., CLIResult]) -> None:
    bot = _issue(cli, demo_home, "agent:bot")
    with server.client(bot["token"]) as http:
        assert http.get("/api/runs").status_code == 200
        assert cli("tokens", "revoke", bot["id"], home=demo_home).returncode == 0
        assert http.get("/api/runs").status_code == 401


def test_errors_answer_the_envelope_and_bodies_over_the_limit_are_refused(
        server: Server, demo_home: HomeBuilder, cli: Callable[..., CLIResult]) -> None:
    bot = _issue(cli, demo_home, "agent:bot")
    with server.client(bot["token"]) as http:
        missing = http.get("/api/runs/nope")
        assert missing.status_code == 404 and missing.json()["error"]["code"] == "not_found"
        bad = http.post("/api/runs", content=b"{not json", headers={"content-type": "application/json"})
        assert bad.status_code == 400 and bad.json()["error"]["code"] == "invalid_json"
        huge = http.post("/api/runs", content=b"[" + b"1," * 200_000 + b"1]")
        assert huge.status_code == 413 and huge.json()["error"]["code"] == "body_too_large"

        def chunks() -> Iterator[bytes]:  # no Content-Length: counted as it is read
            for _ in range(100):
                yield b" " * 8192

        streamed = http.post("/api/runs", content=chunks())
        assert streamed.status_code == 413 and streamed.json()["error"]["code"] == "body_too_large"
        assert http.get("/api/runs").json()["data"] == []


@asynccontextmanager
async def mcp_session(url: str, token: str, **options: Any) -> AsyncIterator[ClientSession]:
    async with httpx.AsyncClient(headers={"Authorization": f"Bearer {token}"}, timeout=60, **options) as client:
        async with streamable_http_client(f"{url}/mcp", http_client=client) as (read, write):
            async with ClientSession(read, write) as session:
                await session.initialize()
                yield session


def _answer(result: Any) -> dict[str, Any]:
    return dict(result.structured_content or json.loads(result.content[0].text))


def test_mcp_over_http_acts_as_the_tokens_principal(server: Server, demo_home: HomeBuilder,
                                                    cli: Callable[..., CLIResult], make_engine: Any) -> None:
    bot = _issue(cli, demo_home, "agent:bot")

    async def work() -> tuple[set[str], str, dict[str, Any], dict[str, Any]]:
        async with mcp_session(server.url, bot["token"]) as session:
            tools = {t.name for t in (await session.list_tools()).tools}
            started = _answer(await session.call_tool("start_run", {"process": "demo",
                                                                    "data": {"ticket_id": "T-9"}}))
            run = started["data"]["id"]
            await session.call_tool("complete_step", {"run": run, "step": "gather", "evidence": GATHER})
            await session.call_tool("skip_step", {"run": run, "step": "extra", "reason": "not needed"})
            refused = _answer(await session.call_tool("complete_step", {"run": run, "step": "review",
                                                                        "evidence": {"approved": True}}))
            mine = _answer(await session.call_tool("list_my_runs", {}))
            return tools, run, refused, mine

    tools, run, refused, mine = anyio.run(work)
    assert {"list_processes", "start_run", "get_guidance", "complete_step", "skip_step", "get_run",
            "list_my_runs"} <= tools
    assert refused["ok"] is False and refused["error"]["details"]["reason"] == "actor_not_allowed"
    assert [r["id"] for r in mine["data"]] == [run]
    engine = make_engine(demo_home)
    entries = engine.log(run)
    assert {e["door"] for e in entries} == {f"token:{bot['id']}"}
    assert entries[-1]["event"] == "refused" and entries[-1]["actor"] == "agent:bot"
    assert bot["token"] not in _log_text(engine) + server.errlog.read_text()


def test_the_inbox_and_claims_through_the_api(server: Server, demo_home: HomeBuilder,
                                              cli: Callable[..., CLIResult]) -> None:
    bot, alice, bob = (_issue(cli, demo_home, p) for p in ("agent:bot", "human:alice", "human:bob"))
    with server.client(bot["token"]) as http:
        run = http.post("/api/runs", json={"process": "demo", "data": {"ticket_id": "T-1"}}).json()["data"]["id"]
        http.post(f"/api/runs/{run}/steps/gather/complete", json={"evidence": GATHER})
        http.post(f"/api/runs/{run}/steps/extra/skip", json={"reason": "not needed"})
        assert http.get("/api/inbox").json()["data"] == []  # the review needs a person
    with server.client(alice["token"]) as http:
        items = http.get("/api/inbox").json()["data"]
        assert [(i["run"], i["process"], i["step"], i["claimed_by"]) for i in items] == [(run, "demo", "review", None)]
        assert items[0]["ready_at"]
        claimed = http.post(f"/api/runs/{run}/steps/review/claim")
        assert claimed.status_code == 200 and claimed.json()["data"]["claimed_by"] == "human:alice"
    with server.client(bob["token"]) as http:
        assert http.get("/api/inbox").json()["data"] == []
        refused = http.post(f"/api/runs/{run}/steps/review/complete", json={"evidence": {"approved": True}})
        assert refused.status_code == 409 and refused.json()["error"]["details"]["reason"] == "claimed_by_other"
    with server.client(alice["token"]) as http:
        done = http.post(f"/api/runs/{run}/steps/review/complete", json={"evidence": {"approved": True}})
        assert done.json()["data"]["status"] == "completed", done.text


def test_the_cli_as_a_client_acts_as_the_tokens_principal(server: Server, demo_home: HomeBuilder,
                                                         cli: Callable[..., CLIResult], make_engine: Any) -> None:
    bot = _issue(cli, demo_home, "agent:bot")
    # The database URL points nowhere: in client mode the CLI must not need it.
    as_bot = {"TIERGATE_URL": server.url, "TIERGATE_TOKEN": bot["token"],
              "TIERGATE_DATABASE_URL": "postgresql+psycopg://nobody@127.0.0.1:1/none"}
    started = cli("start", "demo", "--data", '{"ticket_id": "T-5"}', "--json", home=demo_home, env=as_bot)
    assert started.returncode == 0, started
    run = started.json["data"]["id"]
    assert started.json["data"]["started_by"] == "agent:bot"
    done = cli("complete", run, "gather", "--evidence", json.dumps(GATHER), "--actor", "agent:bot", "--json",
               home=demo_home, env=as_bot)
    assert done.returncode == 0 and done.json["data"]["ready"] == ["extra"], done
    assert cli("skip", run, "extra", "--reason", "not needed", home=demo_home, env=as_bot).returncode == 0
    status = cli("status", run, home=demo_home, env=as_bot)
    assert status.returncode == 0 and "review" in status.stdout and "agent:bot" in status.stdout

    mismatch = cli("complete", run, "review", "--evidence", '{"approved": true}', "--actor", "human:x", "--json",
                   home=demo_home, env=as_bot)
    assert mismatch.returncode == 1 and mismatch.json["error"]["code"] == "actor_mismatch", mismatch
    people = cli("complete", run, "review", "--evidence", '{"approved": true}', home=demo_home, env=as_bot)
    assert people.returncode == 1 and "(refused)" in people.stderr and "Traceback" not in people.stderr
    assert cli("inbox", "--json", home=demo_home, env=as_bot).json["data"] == []

    revoked = cli("tokens", "revoke", bot["id"], home=demo_home, env={"TIERGATE_URL": server.url})
    assert revoked.returncode == 0, revoked  # an operator command: always on the database directly
    refused = cli("status", run, "--json", home=demo_home, env=as_bot)
    assert refused.returncode == 1 and refused.json["error"]["code"] == "unauthorized"
    assert bot["token"] not in refused.stdout + refused.stderr + mismatch.stdout

    log = make_engine(demo_home).log(run)
    assert [(e["actor"], e["detail"].get("reason"), e["detail"].get("claimed")) for e in log
            if e["event"] == "refused"] == [("agent:bot", "actor_mismatch", "human:x"),
                                            ("agent:bot", "actor_not_allowed", None)]
    assert {e["door"] for e in log} == {f"token:{bot['id']}"}


def test_the_client_without_a_token_or_a_server_is_explained(demo_home: HomeBuilder,
                                                            cli: Callable[..., CLIResult]) -> None:
    no_token = cli("status", "abc", "--json", home=demo_home, env={"TIERGATE_URL": "http://127.0.0.1:9"})
    assert no_token.returncode == 2 and no_token.json["error"]["code"] == "token_missing"
    no_server = cli("status", "abc", "--json", home=demo_home,
                    env={"TIERGATE_URL": f"http://127.0.0.1:{free_port()}", "TIERGATE_TOKEN": "tg_secret"})
    assert no_server.returncode == 1 and no_server.json["error"]["code"] == "server_unreachable"
    assert "tg_secret" not in no_server.stdout


def test_metrics_in_prometheus_text_format(server: Server, demo_home: HomeBuilder,
                                           cli: Callable[..., CLIResult]) -> None:
    bot = _issue(cli, demo_home, "agent:bot")
    with server.client(bot["token"]) as http:
        run = http.post("/api/runs", json={"process": "demo", "data": {"ticket_id": "T-1"}}).json()["data"]["id"]
        http.post(f"/api/runs/{run}/steps/gather/complete", json={"evidence": {"summary": "short"}})
        http.post(f"/api/runs/{run}/steps/gather/complete", json={"evidence": GATHER})
        http.post(f"/api/runs/{run}/steps/review/complete", json={"evidence": {"approved": True}})
        scraped = http.get("/metrics")
    assert scraped.status_code == 200 and scraped.headers["content-type"].startswith("text/plain; version=0.0.4")
    lines = scraped.text.splitlines()
    assert 'tiergate_runs{process="demo",status="active"} 1' in lines
    assert 'tiergate_steps_completed_total{process="demo"} 1' in lines
    assert 'tiergate_gate_failures_total{process="demo"} 1' in lines
    assert 'tiergate_refusals_total{process="demo",reason="not_ready"} 1' in lines
    assert "# TYPE tiergate_timers_overdue gauge" in lines and "tiergate_timers_due 0" in lines
    assert any(line.startswith("tiergate_log_fold_lag_entries ") for line in lines)


@pytest.fixture
def checkpointing(demo_home: HomeBuilder, cli: Callable[..., CLIResult], tmp_path: Path) -> dict[str, Path]:
    """A home whose tiergate.toml has a log key, a checkpoint after every entry, and housekeeping twice a second."""
    keys, folder = tmp_path / "keys", tmp_path / "checkpoints"
    assert cli("log", "keygen", "--out", str(keys), home=demo_home).returncode == 0
    demo_home.write("tiergate.toml", f'log_key = "{keys / "log-signing.key"}"\nlog_checkpoints = "{folder}"\n'
                                     'log_checkpoint_entries = 1\nhousekeeping_seconds = 0.3\n')
    return {"public": keys / "log-signing.pub", "folder": folder}


def test_the_server_writes_checkpoints_by_itself(checkpointing: dict[str, Path], server: Server,
                                                 demo_home: HomeBuilder, cli: Callable[..., CLIResult]) -> None:
    """`tiergate serve` alone (no worker) keeps the log's tree and signs checkpoints as the log grows."""
    started = cli("start", "demo", "--data", json.dumps({"ticket_id": "T-5"}), "--actor", "agent:bot", "--quiet",
                  home=demo_home)
    assert started.returncode == 0, started
    deadline = time.monotonic() + 120
    while not list(checkpointing["folder"].glob("checkpoint-*.txt")):
        assert server.process.poll() is None and time.monotonic() < deadline, server.errlog.read_text()
        time.sleep(0.2)
    verified = cli("log", "verify", "--checkpoints", str(checkpointing["folder"]), "--public-key",
                   str(checkpointing["public"]), "--json", home=demo_home)
    assert verified.returncode == 0, verified
    assert verified.json["data"]["checkpoints"]["checkpoints"] >= 1
    assert "housekeeping" not in server.errlog.read_text()  # nothing went wrong on the way
