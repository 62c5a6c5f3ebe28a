"""Whose problem it is, said alike at every door: the HTTP status of each error code (the API and
the web pages), MCP's tool error or JSON-RPC error, and the exit status of the CLI as a client.
A definition broken on the server is the server's problem (500), never the request's (400)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Callable, Iterator

import httpx2 as httpx
import pytest

from serving import Server, issue_token, running_server
from support import CLIResult, HomeBuilder
from test_cli_usage import _documented_exit_codes
from tiergate.client import _USAGE_CODES
from tiergate.server.api import REFUSAL_STATUS, STATUS

START = {"process": "demo", "data": {"ticket_id": "T-1"}}
MCP_HEADERS = {"Content-Type": "application/json", "Accept": "application/json, text/event-stream",
               "MCP-Protocol-Version": "2025-06-18"}
#: Codes no request to the server can get: commands on the database or the files alone, and the
#: client's own (before or instead of an answer).
NOT_THROUGH_THE_SERVER = {
    "approval_not_needed", "approval_required", "change_not_allowed", "checkpoint_invalid", "decision_tests_failed",
    "deploy_invalid", "log_forked", "not_a_person", "not_available_in_client_mode", "nothing_to_deploy",
    "password_invalid", "principal_disabled", "principal_exists", "proof_invalid", "serve_failed", "server_error",
    "server_unreachable", "signature_invalid", "tests_failed", "token_invalid", "token_missing", "url_invalid",
    "witness_conflict", "witness_refused",
    "refused", "claimed_by_other",  # by reason: REFUSAL_STATUS
    "signal_unreached",  # not an error
}
SERVER_SIDE = {"definition_invalid", "definitions_invalid", "definition_missing", "bpmn_invalid", "dmn_invalid",
               "template_error", "yaml_syntax", "routing_missing", "decision_missing", "internal_error",
               "log_tampered", "definition_tampered"}


def test_every_documented_code_has_an_http_status_and_server_side_problems_are_500() -> None:
    documented = _documented_exit_codes()
    unclassified = set(documented) - set(STATUS) - NOT_THROUGH_THE_SERVER
    assert not unclassified, f"give these codes an HTTP status in tiergate.server.api.STATUS: {sorted(unclassified)}"
    assert {code: STATUS[code] for code in SERVER_SIDE} == dict.fromkeys(SERVER_SIDE, 500)
    assert STATUS["invalid_input"] == STATUS["usage"] == 400 and STATUS["gate_failed"] == 422
    assert STATUS["unauthorized"] == 401 and STATUS["actor_mismatch"] == 403 and STATUS["not_found"] == 404
    assert STATUS["conflict"] == 409 and STATUS["database_error"] == 503
    assert REFUSAL_STATUS["roles_unreadable"] == REFUSAL_STATUS["tier_definition_missing"] == 500
    server_doc = (Path(__file__).parents[1] / "docs" / "server.md").read_text(encoding="utf-8")
    for code, status in STATUS.items():  # docs/server.md's table names each code with its status
        if code != "error":
            assert re.search(rf"^\| `?{status}`? \|.*`{code}`", server_doc, re.M), (code, status)


def test_the_cli_as_a_client_exits_as_the_docs_say_for_every_code_the_server_answers() -> None:
    documented = _documented_exit_codes()
    for code in set(STATUS) - {"error"} | _USAGE_CODES:
        assert (2 if code in _USAGE_CODES else 1) == documented[code], code


@pytest.fixture
def server(demo_home: HomeBuilder, db_url: str, tmp_path: Path) -> Iterator[Server]:
    with running_server(demo_home.root, db_url, tmp_path / "server.log") as running:
        yield running


def _signed_in(server: Server, cli: Callable[..., CLIResult], home: HomeBuilder) -> httpx.Client:
    assert cli("principals", "set-password", "human:alice", "--password-stdin", home=home,
               input="correct horse battery staple\n").returncode == 0
    http = httpx.Client(base_url=server.url, timeout=60)
    form = http.get("/sign-in").text
    csrf = re.search(r'name="csrf" value="([0-9a-f]+)"', form).group(1)  # type: ignore[union-attr]
    assert http.post("/sign-in", data={"csrf": csrf, "principal": "human:alice",
                                       "password": "correct horse battery staple", "next": "/"}).status_code == 303
    return http


def test_a_checklist_broken_on_the_server_is_the_servers_problem_at_every_door(
        server: Server, demo_home: HomeBuilder, cli: Callable[..., CLIResult]) -> None:
    token = issue_token(cli, demo_home, "human:alice")
    web = _signed_in(server, cli, demo_home)
    demo_home.write("checklists/demo.yaml", "id: demo\nsteps: [1, 2")  # broken while the server runs
    with server.client(token) as http:
        answer = http.post("/api/runs", json=START)
        for _ in range(50):  # the server looks at the files at most once a second
            if answer.status_code != 201:
                break
            answer = http.post("/api/runs", json=START)
        assert answer.status_code == 500, answer.text
        error = answer.json()["error"]
        assert error["code"] == "definition_invalid" and "checklists/demo.yaml:2" in error["message"], error
        runs = len(http.get("/api/runs").json()["data"])
        call = http.post("/mcp", headers=MCP_HEADERS, json={
            "jsonrpc": "2.0", "id": 3, "method": "tools/call",
            "params": {"name": "start_run", "arguments": {"process": "demo", "data": {"ticket_id": "T-1"}}}})
        assert call.status_code == 200 and call.json()["result"]["isError"] is True  # a tool's error, not JSON-RPC's
        assert call.json()["result"]["structuredContent"]["error"]["code"] == "definition_invalid"
        assert len(http.get("/api/runs").json()["data"]) == runs  # nothing started
    form = web.get("/start/demo").text
    csrf = re.search(r'name="csrf" value="([0-9a-f]+)"', form).group(1)  # type: ignore[union-attr]
    page = web.post("/start/demo", data={"csrf": csrf, "ticket_id": "T-1"})
    assert page.status_code == 500 and page.headers["content-type"].startswith("text/html"), page.text
    assert "checklists/demo.yaml:2" in page.text and "<code>definition_invalid</code>" in page.text
    web.close()
    client = cli("start", "demo", "--data", '{"ticket_id": "T-1"}', "--json", home=demo_home,
                 env={"TIERGATE_URL": server.url, "TIERGATE_TOKEN": token})
    assert client.returncode == 1 and client.json["error"]["code"] == "definition_invalid", client
    assert "Traceback" not in server.errlog.read_text() + client.stderr
