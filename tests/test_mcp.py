"""The MCP server end to end: the SDK's own client, over stdio, against a real `python -m tiergate mcp`."""

from __future__ import annotations

import json
import os
import sys
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, AsyncIterator, Awaitable, Callable

import anyio
import pytest
from mcp import ClientSession, StdioServerParameters, stdio_client
from mcp.shared.exceptions import MCPError

from support import CLIResult, HomeBuilder
from tiergate.engine import Engine

Cli = Callable[..., CLIResult]
TOOLS = {"list_processes", "start_run", "get_guidance", "complete_step", "skip_step", "send_message", "send_signal", "get_run",
         "list_my_runs", "list_my_work"}
TRIAGE = {"ticket_id": "SUP-10234", "client_id": "CL-0042", "client_tier": "gold",
          "summary": "Payslips show the wrong overtime rate since the last release"}


@asynccontextmanager
async def agent_session(home: Path, db_url: str, actor: str, errlog: Path) -> AsyncIterator[ClientSession]:
    """An MCP client session with `tiergate mcp --actor ACTOR` started as a real subprocess."""
    params = StdioServerParameters(command=sys.executable, args=["-m", "tiergate", "--home", str(home), "mcp",
                                                                 "--actor", actor],
                                   env={"TIERGATE_DATABASE_URL": db_url, "NO_COLOR": "1",
                                        # the tiergate under test, also when run from another checkout
                                        "PYTHONPATH": os.environ.get("PYTHONPATH", "")}, cwd=str(home))
    with errlog.open("w") as stderr:
        async with stdio_client(params, errlog=stderr) as (read, write):
            async with ClientSession(read, write) as session:
                await session.initialize()
                yield session


def run_session(home: Path, db_url: str, actor: str, tmp_path: Path,
                body: Callable[[ClientSession], Awaitable[None]]) -> None:
    async def main() -> None:
        with anyio.fail_after(240):
            async with agent_session(home, db_url, actor, tmp_path / "server.stderr") as session:
                await body(session)

    anyio.run(main)


async def call(session: ClientSession, tool: str, **arguments: Any) -> dict[str, Any]:
    """Call a tool; return its envelope, after checking text, structured content and is_error agree."""
    result = await session.call_tool(tool, arguments)
    envelope = json.loads(result.content[0].text)
    assert result.structured_content == envelope
    assert result.is_error is (not envelope["ok"])
    assert set(envelope) == ({"ok", "data"} if envelope["ok"] else {"ok", "error"})
    return envelope


@pytest.fixture
def platform(repo_home: Path, make_engine: Callable[..., Engine]) -> Engine:
    return make_engine(repo_home)


def test_an_agent_runs_a_triage_checklist_to_completion(repo_home: Path, db_url: str, tmp_path: Path,
                                                        platform: Engine) -> None:
    found: dict[str, Any] = {}

    async def agent(session: ClientSession) -> None:
        processes = (await call(session, "list_processes"))["data"]
        assert {p["id"]: p["tier"] for p in processes}["support-triage"] == 2
        started = await call(session, "start_run", process="support-triage", data=TRIAGE)
        run = found["run"] = started["data"]["id"]
        assert started["data"]["started_by"] == "agent:triage-bot" and started["data"]["ready"] == ["gather-context"]

        guidance = (await call(session, "get_guidance", run=run))["data"]
        assert guidance["tier"] == 2 and [r["id"] for r in guidance["ready"]] == ["gather-context"]
        assert f'`complete_step(run="{run}", step="gather-context", evidence={{...}})`' in guidance["text"]
        assert "`next_pay_date` (required): a date written YYYY-MM-DD" in guidance["ready"][0]["evidence_words"]

        # A first attempt fails the gate; the agent reads the error and fixes every field it names.
        failed = await call(session, "complete_step", run=run, step="gather-context",
                            evidence={"duplicate_of": "10234", "context_notes": "Overtime"})
        error = failed["error"]
        assert error["code"] == "gate_failed"
        assert error["message"].startswith("evidence for step 'gather-context' does not pass its gate (3 problems):")
        assert {e["pointer"] for e in error["details"]["errors"]} == {"/duplicate_of", "/next_pay_date",
                                                                      "/context_notes"}
        fixed = {"duplicate_of": None, "next_pay_date": "2026-11-30",
                 "context_notes": "Overtime element changed in release 24.3; client runs weekly pay"}
        done = await call(session, "complete_step", run=run, step="gather-context", evidence=fixed)
        assert done["data"]["ready"] == ["reproduce"]

        await call(session, "complete_step", run=run, step="reproduce", evidence={
            "reproduced": True, "environment": "client-sandbox", "product_version": "24.3",
            "steps_to_reproduce": ["Run the weekly payroll with overtime hours on a bank holiday"],
            "expected_result": "Overtime paid at 1.5 times the hourly rate",
            "actual_result": "Overtime paid at the flat hourly rate",
            "evidence_urls": ["https://tickets.example.com/SUP-10234/recording"]})
        classified = await call(session, "complete_step", run=run, step="classify", evidence={
            "issue_category": "pay-calculation", "client_tier": "gold", "severity": "S2",
            "severity_rationale": "Forty employees paid at the wrong overtime rate", "pay_impact": True})
        # `route` is a decide step: the engine did it the moment it became ready.
        route = next(s for s in classified["data"]["steps"] if s["id"] == "route")
        assert route["state"] == "done" and route["actor"] == "system:tiergate"
        assert classified["data"]["ready"] == ["assign", "acknowledge"]
        guidance = (await call(session, "get_guidance", run=run))["data"]
        assert "`pay-and-statutory` queue at priority P2" in guidance["text"]

        await call(session, "complete_step", run=run, step="assign", evidence={
            "assigned_queue": "pay-and-statutory", "assignee": "Priya (pay team)",
            "assigned_at": "2026-11-25T10:05:00Z"})
        await call(session, "complete_step", run=run, step="acknowledge", evidence={
            "acknowledged_at": "2026-11-25T10:10:00Z",
            "acknowledgement_url": "https://tickets.example.com/SUP-10234#reply-1",
            "next_update_due": "2026-11-25T14:10:00Z"})
        finished = await call(session, "complete_step", run=run, step="hand-off", evidence={
            "triage_outcome": "handed-to-queue",
            "handoff_note": "Reproduced in the sandbox on 24.3; overtime multiplier not applied on bank holidays."})
        assert finished["data"]["status"] == "completed"

        status = (await call(session, "get_run", run=run))["data"]
        assert status["status"] == "completed" and status["ended_at"]
        mine = (await call(session, "list_my_runs"))["data"]
        assert [(r["id"], r["status"]) for r in mine] == [(run, "completed")]
        assert (await call(session, "list_my_runs", status="active"))["data"] == []
        closed = (await call(session, "get_guidance", run=run))["data"]
        assert closed["ready"] == [] and "This run is completed: nothing more to do in it." in closed["text"]

    run_session(repo_home, db_url, "agent:triage-bot", tmp_path, agent)
    log = platform.log(found["run"])
    bot, system = "agent:triage-bot", "system:tiergate"
    assert [(e["event"], e["step"], e["actor"]) for e in log] == [
        ("routed", None, system), ("started", None, bot), ("step_ready", "gather-context", system),
        ("gate_failed", "gather-context", bot), ("step_completed", "gather-context", bot),
        ("step_ready", "reproduce", system), ("step_completed", "reproduce", bot),
        ("step_ready", "classify", system), ("step_completed", "classify", bot),
        ("step_ready", "route", system), ("decision_evaluated", "route", system), ("step_completed", "route", system),
        ("step_ready", "assign", system), ("step_ready", "acknowledge", system),
        ("step_completed", "assign", bot), ("step_completed", "acknowledge", bot),
        ("step_ready", "hand-off", system), ("step_completed", "hand-off", bot), ("completed", None, system),
    ]
    gate_failed = log[3]["detail"]
    assert gate_failed["attempt"] == "complete" and gate_failed["evidence"]["duplicate_of"] == "10234"
    assert platform.verify_log()["ok"] is True


def test_an_agent_runs_a_tier3_run_to_completion(repo_home: Path, db_url: str, tmp_path: Path,
                                                 platform: Engine) -> None:
    found: dict[str, Any] = {}

    async def agent(session: ClientSession) -> None:
        started = await call(session, "start_run", process="knowledge-qa",
                             data={"question": "Which overtime rate applies on bank holidays?"})
        run = found["run"] = started["data"]["id"]
        assert started["data"]["tier"] == 3 and started["data"]["ready"] == ["work"]
        guidance = (await call(session, "get_guidance", run=run))["data"]
        assert 'Question: "Which overtime rate applies on bank holidays?"' in guidance["text"]
        assert f'`complete_step(run="{run}", step="work", evidence={{...outcome, or {{}}}})`' in guidance["text"]
        resource = await session.read_resource(f"tiergate://runs/{run}/guidance")
        assert resource.contents[0].text == guidance["text"]
        assert resource.contents[0].mime_type == "text/markdown"
        closed = await call(session, "complete_step", run=run, step="work",
                            evidence={"answered": True, "confidence": "high", "sources": ["KB-1234"]})
        assert closed["data"]["status"] == "completed"
        # The server sees edited definitions, as a new CLI command would.
        path = repo_home / "tiers" / "conventions" / "knowledge-qa.md.j2"
        path.write_text(path.read_text().replace("### Never state", "### Never, ever state"))
        again = await call(session, "start_run", process="knowledge-qa", data={})
        assert "### Never, ever state" in again["data"]["steps"][0]["instructions"]
        found["again"] = again["data"]["id"]

    run_session(repo_home, db_url, "agent:kb-bot", tmp_path, agent)
    log = platform.log(found["run"])
    assert [(e["event"], e["actor"]) for e in log] == [
        ("routed", "system:tiergate"), ("started", "agent:kb-bot"), ("guidance_served", "system:tiergate"),
        ("step_ready", "system:tiergate"), ("step_completed", "agent:kb-bot"), ("completed", "system:tiergate")]
    assert log[4]["detail"] == {"outcome": {"answered": True, "confidence": "high", "sources": ["KB-1234"]}}


def test_tools_resources_and_prompt_are_described_and_take_no_actor(repo_home: Path, db_url: str,
                                                                    tmp_path: Path) -> None:
    async def client(session: ClientSession) -> None:
        tools = (await session.list_tools()).tools
        assert {t.name for t in tools} == TOOLS
        for tool in tools:
            assert tool.description and len(tool.description) > 80, tool.name
            properties = tool.input_schema.get("properties", {})
            assert "actor" not in properties, tool.name
            for name, spec in properties.items():
                assert spec.get("description"), f"{tool.name}.{name} needs a description"
            assert tool.output_schema and set(tool.output_schema["properties"]) == {"ok", "data", "error"}
            assert tool.annotations is not None
        by_name = {t.name: t for t in tools}
        assert by_name["complete_step"].input_schema["required"] == ["run", "step", "evidence"]
        assert by_name["get_run"].annotations.read_only_hint is True
        templates = (await session.list_resource_templates()).resource_templates
        assert [t.uri_template for t in templates] == ["tiergate://runs/{run}/guidance"]
        prompts = (await session.list_prompts()).prompts
        assert [(p.name, [a.name for a in p.arguments or []]) for p in prompts] == [("work_on_run", ["run"])]

    run_session(repo_home, db_url, "agent:triage-bot", tmp_path, client)


def test_refusals_come_back_as_tool_errors_and_are_logged(demo_home: HomeBuilder, db_url: str, tmp_path: Path,
                                                          make_engine: Callable[..., Engine]) -> None:
    found: dict[str, Any] = {}

    async def agent(session: ClientSession) -> None:
        run = found["run"] = (await call(session, "start_run", process="demo", data={"ticket_id": "T-7"}))["data"]["id"]
        early = (await call(session, "complete_step", run=run, step="review", evidence={"approved": True}))["error"]
        assert early["code"] == "refused" and early["details"]["reason"] == "not_ready"
        assert early["message"] == "step 'review' is not ready: it waits for gather, extra. Finish those first."
        await call(session, "complete_step", run=run, step="gather",
                   evidence={"summary": "Payslip totals are off by one cent", "severity": "S2"})
        required = (await call(session, "skip_step", run=run, step="gather", reason="x"))["error"]
        assert required["details"]["reason"] == "already_done"
        await call(session, "skip_step", run=run, step="extra", reason="not needed for a rounding issue")
        human = (await call(session, "complete_step", run=run, step="review", evidence={"approved": True}))["error"]
        assert human["code"] == "refused" and human["details"]["reason"] == "actor_not_allowed"
        assert "step 'review' can only be done by humans; agent:bot is an agent." in human["message"]
        guidance = (await call(session, "get_guidance", run=run))["data"]
        assert guidance["ready"][0]["you_may"] is False
        assert "**You (agent:bot) cannot do this step**: it needs a person; hand it over." in guidance["text"]
        missing = (await call(session, "get_run", run="nope"))["error"]
        assert missing == {"code": "not_found", "message": "no run 'nope'. list_my_runs lists the runs you started.",
                           "details": {"run": "nope", "see": "runs"}}
        bad = (await call(session, "complete_step", run=run, step="review", evidence=["not", "an", "object"]))["error"]
        assert bad["code"] == "usage" and bad["details"]["errors"][0]["argument"] == "evidence"
        assert bad["message"].startswith("complete_step: bad arguments: 'evidence' Input should be a valid dictionary")
        absent = (await call(session, "start_run", process="demo"))["error"]
        assert absent["message"] == ("start_run: bad arguments: 'data' is missing. The tool's input schema says what "
                                     "each argument must be.")
        invalid = (await call(session, "start_run", process="demo", data={"ticket_id": "nope"}))["error"]
        assert invalid["code"] == "invalid_data" and invalid["details"]["errors"][0]["pointer"] == "/ticket_id"
        with pytest.raises(MCPError, match="not_found: no run 'nope'"):
            await session.read_resource("tiergate://runs/nope/guidance")
        prompt = await session.get_prompt("work_on_run", {"run": run})
        text = prompt.messages[0].content.text  # type: ignore[union-attr]
        assert text.startswith(f"Work on tiergate run {run} as agent:bot, one step at a time.")
        assert f"# Demo checklist — run {run}" in text
        with pytest.raises(MCPError) as err:
            await session.get_prompt("work_on_run", {"run": "nope"})
        assert err.value.error.data["error"]["code"] == "not_found"

    run_session(demo_home.root, db_url, "agent:bot", tmp_path, agent)
    log = make_engine(demo_home).log(found["run"])
    refused = [(e["event"], e["step"], e["actor"], e["detail"]["reason"]) for e in log if e["event"] == "refused"]
    assert refused == [("refused", "review", "agent:bot", "not_ready"), ("refused", "gather", "agent:bot", "already_done"),
                       ("refused", "review", "agent:bot", "actor_not_allowed")]


@pytest.mark.parametrize("args, env, code, message", [
    (["--actor", "human:alice"], {}, "actor_invalid",
     "tiergate mcp serves agents only, and human:alice is a person. People act through the CLI under their own name "
     "(`tiergate complete RUN STEP --actor human:NAME`). Start the server with --actor agent:NAME."),
    ([], {"TIERGATE_ACTOR": "human:bob"}, "actor_invalid", "tiergate mcp serves agents only, and human:bob is a person."),
    (["--actor", "system:tiergate"], {}, "actor_invalid", "the actor kind 'system' is reserved for the engine itself"),
    ([], {}, "actor_missing", "no actor given. Say who is acting with --actor agent:NAME"),
])
def test_the_server_refuses_to_start_for_anyone_but_an_agent(cli: Cli, repo_home: Path, args: list[str],
                                                             env: dict[str, str], code: str, message: str) -> None:
    result = cli("mcp", *args, home=repo_home, env=env, input="")
    assert result.returncode == 2, result
    assert result.stderr.startswith(f"error ({code}): {message}"), result
    assert result.stdout == ""
    as_json = cli("mcp", *args, "--json", home=repo_home, env=env, input="")
    assert as_json.returncode == 2 and as_json.json["error"]["code"] == code


def test_the_server_refuses_to_start_on_an_unreachable_database(cli: Cli, repo_home: Path, tmp_path: Path) -> None:
    result = cli("mcp", "--actor", "agent:bot", home=repo_home, input="",
                 env={"TIERGATE_DATABASE_URL": "postgresql+psycopg://nobody@127.0.0.1:1/none"})
    assert result.returncode == 1, result
    assert result.stderr.startswith("error (database_error)"), result


def test_errors_speak_mcp_and_unknown_arguments_are_refused(demo_home: HomeBuilder, db_url: str,
                                                           tmp_path: Path) -> None:
    """An agent on MCP is pointed at tools, never at a shell command; an argument no tool takes
    (an actor, say) is refused, not dropped."""

    async def agent(session: ClientSession) -> None:
        run = (await call(session, "start_run", process="demo", data={"ticket_id": "T-8"}))["data"]["id"]
        posing = (await call(session, "complete_step", run=run, step="gather", actor="human:alice",
                             evidence={"summary": "Payslip totals are off by one cent", "severity": "S2"}))["error"]
        assert posing["code"] == "usage" and posing["details"] == {
            "tool": "complete_step", "unknown": ["actor"], "arguments": ["evidence", "run", "step"]}
        assert posing["message"] == ("complete_step: unknown argument 'actor'; it takes 'evidence', 'run', 'step'. "
                                     "The actor is fixed when the server starts: no tool takes one.")
        assert (await call(session, "get_run", run=run))["data"]["steps"][0]["state"] == "ready"  # nothing moved
        failed = (await call(session, "complete_step", run=run, step="gather", evidence={"severity": "S9"}))["error"]
        assert failed["code"] == "gate_failed"
        assert failed["message"].endswith(f'Fix the evidence and submit it again. Call get_guidance(run="{run}") '
                                          "for what each ready step needs.")
        early = (await call(session, "skip_step", run=run, step="gather", reason="no"))["error"]
        assert early["details"]["reason"] == "not_optional"
        for error in (posing, failed, early):
            assert "tiergate " not in error["message"] and "`tiergate" not in error["message"]

    run_session(demo_home.root, db_url, "agent:bot", tmp_path, agent)
