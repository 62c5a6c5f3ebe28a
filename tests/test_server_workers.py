"""`tiergate serve --workers 2` through real sockets: two server processes on one socket agree on
everything (the database holds it), housekeeping runs once, and SIGTERM stops them all.

Each test finds the workers by their process ids (``/healthz`` answers with its own) and keeps
one client connection on each: a keep-alive connection stays with the worker that accepted it,
and ``Pinned`` checks every answer came over that same connection.
"""

from __future__ import annotations

import os
import re
import signal
import threading
import time
from pathlib import Path
from typing import Any, Callable, Iterator

import anyio
import httpx2 as httpx
import pytest

from serving import Server, running_server
from support import CLIResult, HomeBuilder
from test_serve_timers import LONG_AGO
from test_server import _answer, _issue, mcp_session
from test_tier1_timers import APPROVAL
from tier1_helpers import bpmn, chain, tier1_home, user
from tiergate.engine import Engine

#: A bound against hanging (a worker that never starts), not a timing.
PATIENCE = 120
WORKERS = ("--workers", "2")
STEPS = 5
STEPPED = ("id: stepped\ntitle: Steps\nowner: lead\nexpected_minutes: 5\nsteps:\n" + "".join(
    f"  - id: s{i}\n    title: Step {i}\n    done_when: {{type: object, required: [note]}}\n" for i in range(STEPS)))


class Pinned:
    """A client on one keep-alive connection, so on one worker (``pid``). Should the server close
    the connection while it idles (uvicorn's keep-alive timeout), ``request`` learns the worker of
    the new connection from ``/healthz`` asked over it."""

    def __init__(self, server: Server, token: str | None = None):
        self.http = server.client(token)
        self.pid, self.address = self._worker()

    @staticmethod
    def _address(answer: httpx.Response) -> Any:
        return answer.extensions["network_stream"].get_extra_info("client_addr")

    def _worker(self) -> tuple[int, Any]:
        answer = self.http.get("/healthz")
        return int(answer.json()["data"]["pid"]), self._address(answer)

    def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """The answer; ``pid`` is then the worker that gave it."""
        answer = self.http.request(method, path, **kwargs)
        address = self._address(answer)
        if address != self.address:
            self.pid, self.address = self._worker()
            assert self.address == address, "the connection changed twice in a row"
        return answer

    def close(self) -> None:
        self.http.close()


def answering(server: Server, count: int = 2, tries: int = 400) -> set[int]:
    """The process ids of the workers that accepted new connections, until ``count`` of them did."""
    found: set[int] = set()
    for _ in range(tries):
        client = Pinned(server)
        found.add(client.pid)
        client.close()
        if len(found) == count:
            break
    return found


def workers_of(server: Server, count: int = 2) -> set[int]:
    """The process ids of the ``count`` workers: new connections until each has accepted one."""
    found = answering(server, count)
    assert len(found) == count, f"only workers {sorted(found)} answered 400 new connections"
    return found


def connect_to(server: Server, pid: int, token: str | None = None) -> Pinned:
    """A new client whose connection worker ``pid`` accepted."""
    for _ in range(400):
        client = Pinned(server, token)
        if client.pid == pid:
            return client
        client.close()
    pytest.fail(f"worker {pid} accepted none of 400 new connections")


@pytest.fixture
def stepped_home(home: HomeBuilder) -> HomeBuilder:
    home.checklist("stepped", STEPPED)
    return home


@pytest.fixture
def two_workers(stepped_home: HomeBuilder, db_url: str, tmp_path: Path) -> Iterator[Server]:
    with running_server(stepped_home.root, db_url, tmp_path / "server.log", args=WORKERS) as server:
        yield server
    assert "Traceback" not in server.errlog.read_text(), server.errlog.read_text()


def test_sixteen_clients_on_two_workers_do_every_step_exactly_once(
        two_workers: Server, stepped_home: HomeBuilder, cli: Callable[..., CLIResult],
        make_engine: Callable[..., Engine]) -> None:
    token = _issue(cli, stepped_home, "agent:bot")["token"]
    workers = workers_of(two_workers)
    clients = [connect_to(two_workers, pid, token) for pid in workers]
    clients += [Pinned(two_workers, token) for _ in range(16 - len(clients))]
    served: set[int] = set()
    runs: list[str] = []
    failures: list[str] = []
    barrier = threading.Barrier(len(clients))

    def work(client: Pinned) -> None:
        barrier.wait(timeout=PATIENCE)
        for _ in range(2):
            started = client.request("POST", "/api/runs", json={"process": "stepped", "data": {}})
            if started.status_code != 201:
                failures.append(started.text)
                return
            run = started.json()["data"]["id"]
            runs.append(run)
            for i in range(STEPS):
                answer = client.request("POST", f"/api/runs/{run}/steps/s{i}/complete",
                                        json={"evidence": {"note": "done"}})
                if answer.status_code != 200:
                    failures.append(answer.text)  # a `database_locked` would land here
                served.add(client.pid)

    threads = [threading.Thread(target=work, args=(c,)) for c in clients]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for client in clients:
        client.close()
    assert failures == [] and len(runs) == 2 * len(clients)
    assert served == workers  # both workers completed steps
    engine = make_engine(stepped_home)
    for run in runs:
        events = [(e["event"], e["step"]) for e in engine.log(run)]
        assert [s for e, s in events if e == "step_completed"] == [f"s{i}" for i in range(STEPS)], events
        assert engine.status(run).status == "completed"
    assert engine.verify_log()["ok"]


def test_a_revoked_token_is_refused_by_every_worker_at_once(
        two_workers: Server, stepped_home: HomeBuilder, cli: Callable[..., CLIResult],
        make_engine: Callable[..., Engine]) -> None:
    issued = _issue(cli, stepped_home, "agent:bot")
    workers = workers_of(two_workers)
    clients = [connect_to(two_workers, pid, issued["token"]) for pid in workers]
    for client in clients:  # the token works in both, and each worker has looked it up already
        assert client.request("GET", "/api/runs").status_code == 200
    result = cli("tokens", "revoke", issued["id"], home=stepped_home)
    assert result.returncode == 0, result
    refused_by: set[int] = set()
    for _ in range(400):  # the very next requests, to every worker: refused
        client = clients.pop() if clients else Pinned(two_workers, issued["token"])
        for method, body in (("GET", None), ("POST", {"process": "stepped", "data": {}})):
            answer = client.request(method, "/api/runs", json=body)
            assert answer.status_code == 401, (client.pid, answer.text)
            refused_by.add(client.pid)
        client.close()
        if refused_by == workers:
            break
    assert refused_by == workers
    assert make_engine(stepped_home).runs() == []


PASSWORD = "correct horse battery staple"


def _sign_in(client: Pinned, who: str, password: str) -> httpx.Response:
    """The sign-in form, fetched and sent through ``client`` (its CSRF token and cookie)."""
    form = client.request("GET", "/sign-in")
    csrf = re.search(r'name="csrf" value="([0-9a-f]+)"', form.text)
    assert csrf, form.text
    return client.request("POST", "/sign-in", data={"csrf": csrf.group(1), "principal": who, "password": password,
                                                    "next": "/"})


def test_web_sessions_and_lock_outs_hold_in_every_worker(
        two_workers: Server, stepped_home: HomeBuilder, cli: Callable[..., CLIResult]) -> None:
    for who in ("human:alice", "human:bob"):
        result = cli("principals", "set-password", who, "--password-stdin", home=stepped_home, input=PASSWORD + "\n")
        assert result.returncode == 0, result
    first, second = (connect_to(two_workers, pid) for pid in sorted(workers_of(two_workers)))
    assert _sign_in(first, "alice", PASSWORD).status_code == 303
    second.http.cookies = first.http.cookies  # the session one worker started, shown to the other
    assert second.request("GET", "/").status_code == 200
    first.http.cookies = httpx.Cookies()
    assert first.request("GET", "/").status_code == 303  # without it: to the sign-in page

    # Failed sign-ins count in the database: three at one worker and two at the other lock bob out.
    second.http.cookies = httpx.Cookies()
    for client in (first, second, first, second, first):
        assert _sign_in(client, "bob", "not the password").status_code == 401
    for client in (first, second):
        answer = _sign_in(client, "bob", PASSWORD)
        assert answer.status_code == 401 and "locked out" in answer.text, (client.pid, answer.text)
    first.close()
    second.close()


def test_mcp_over_http_sessions_on_two_workers(two_workers: Server, stepped_home: HomeBuilder,
                                               cli: Callable[..., CLIResult],
                                               make_engine: Callable[..., Engine]) -> None:
    """MCP over HTTP is stateless: any worker answers any request of a session."""
    token = _issue(cli, stepped_home, "agent:bot")["token"]
    runs: list[str] = []

    async def session() -> None:
        async with mcp_session(two_workers.url, token) as mcp:
            run = _answer(await mcp.call_tool("start_run", {"process": "stepped", "data": {}}))["data"]["id"]
            runs.append(run)
            for i in range(STEPS):
                answer = _answer(await mcp.call_tool("complete_step", {"run": run, "step": f"s{i}",
                                                                       "evidence": {"note": "done"}}))
                assert answer["ok"], answer

    async def sessions() -> None:
        async with anyio.create_task_group() as group:
            for _ in range(4):
                group.start_soon(session)

    anyio.run(sessions)
    engine = make_engine(stepped_home)
    assert len(runs) == 4 and all(engine.status(run).status == "completed" for run in runs)
    assert engine.verify_log()["ok"]


LINEAR4 = bpmn("linear4", '<bpmn:startEvent id="start"/>' + "".join(user(t) for t in ("a", "b", "c", "d"))
               + '<bpmn:endEvent id="end"/>' + chain("start", "a", "b", "c", "d", "end"))


def test_a_tier1_run_moved_by_one_worker_is_continued_by_the_other(
        tmp_path: Path, db_url: str, cli: Callable[..., CLIResult], make_engine: Callable[..., Engine]) -> None:
    """Each worker keeps the workflow of the last move it made (``bpmn.kept``) and remembers the run
    as it saved it; the other worker's move makes both stale, and they must not be continued from."""
    home = tier1_home(tmp_path / "home", {"linear4": LINEAR4})
    token = _issue(cli, home, "agent:bot")["token"]
    moved_by: list[int] = []
    with running_server(home.root, db_url, tmp_path / "server.log", args=WORKERS) as server:
        workers = sorted(workers_of(server))
        client = connect_to(server, workers[0], token)
        run = client.request("POST", "/api/runs", json={"process": "linear4", "data": {}}).json()["data"]["id"]
        for n, step in enumerate(("a", "b", "c", "d")):
            client.close()
            client = connect_to(server, workers[n % 2], token)
            answer = client.request("POST", f"/api/runs/{run}/steps/{step}/complete", json={"evidence": {"n": n}})
            assert answer.status_code == 200, answer.text
            moved_by.append(client.pid)
        client.close()
    assert moved_by == [workers[0], workers[1], workers[0], workers[1]]
    engine = make_engine(home)
    assert engine.status(run).status == "completed"
    completed = [(e["step"], e["detail"]["evidence"]) for e in engine.log(run) if e["event"] == "step_completed"]
    assert completed == [("a", {"n": 0}), ("b", {"n": 1}), ("c", {"n": 2}), ("d", {"n": 3})]
    assert engine.verify_log()["ok"]


def test_a_due_timer_fires_once_with_two_workers(tmp_path: Path, db_url: str,
                                                  make_engine: Callable[..., Engine]) -> None:
    home: Any = tier1_home(tmp_path / "home", {"approval": APPROVAL})
    run = make_engine(home, clock=lambda: LONG_AGO).start("approval", {}, actor="agent:a").id  # both timers due
    engine = make_engine(home)
    with running_server(home.root, db_url, tmp_path / "server.log", {"TIERGATE_HOUSEKEEPING_SECONDS": "0.2"},
                        args=WORKERS):
        deadline = time.monotonic() + PATIENCE
        while "escalated" not in [e["event"] for e in engine.log(run)] and time.monotonic() < deadline:
            time.sleep(0.2)
    events = [e["event"] for e in engine.log(run)]
    assert events.count("timer_fired") == 2 and events.count("escalated") == 2, events  # each timer once
    assert sorted(s.id for s in engine.status(run).ready_steps) == ["escalate", "nudge"]
    assert engine.verify_log()["ok"]


def _descendants(pid: int) -> set[int]:
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                parents[int(entry.name)] = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
    found, todo = set(), [pid]
    while todo:
        parent_pid = todo.pop()
        children = [child for child, parent in parents.items() if parent == parent_pid]
        found.update(children)
        todo.extend(children)
    return found


def _running(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def test_a_killed_worker_is_reported_and_replaced_and_sigterm_stops_every_process(two_workers: Server) -> None:
    supervisor = two_workers.process
    killed, kept = sorted(workers_of(two_workers))
    os.kill(killed, signal.SIGKILL)
    deadline = time.monotonic() + PATIENCE
    replacement = None
    while replacement is None and time.monotonic() < deadline:  # until the new worker has started
        pids = answering(two_workers, tries=20)
        replacement = next(iter(pids - {killed, kept}), None)
    assert replacement is not None and pids == {kept, replacement}
    while f"worker {killed} was killed by SIGKILL" not in two_workers.errlog.read_text():
        assert time.monotonic() < deadline, two_workers.errlog.read_text()
        time.sleep(0.1)
    assert f"worker {killed} was killed by SIGKILL; started worker {replacement} in its place." \
        in two_workers.errlog.read_text()

    family = _descendants(supervisor.pid)
    assert {kept, replacement} <= family
    supervisor.send_signal(signal.SIGTERM)
    assert supervisor.wait(timeout=PATIENCE) == 0
    while any(_running(pid) for pid in family):  # the supervisor waited for its workers; nothing is left
        assert time.monotonic() < deadline, [pid for pid in family if _running(pid)]
        time.sleep(0.1)


@pytest.mark.parametrize("args, env, expected", [
    (["--workers", "0"], {}, "Invalid value for '--workers': 0 is not in the range x>=1."),
    (["--workers", "two"], {}, "Invalid value for '--workers': 'two' is not a valid integer range."),
    ([], {"TIERGATE_WORKERS": "0"},
     "error (config_invalid): TIERGATE_WORKERS is '0', not a whole number of 1 or more."),
])
def test_a_bad_number_of_workers_is_a_clear_error(stepped_home: HomeBuilder, cli: Callable[..., CLIResult],
                                                 args: list[str], env: dict[str, str], expected: str) -> None:
    result = cli("serve", "--port", "1", *args, home=stepped_home, env=env)
    assert result.returncode == 2, result
    assert expected in result.stderr and "Traceback" not in result.stderr, result.stderr


def test_workers_in_tiergate_toml_is_read_and_checked(stepped_home: HomeBuilder, cli: Callable[..., CLIResult]) -> None:
    stepped_home.write("tiergate.toml", 'workers = "many"\n')
    result = cli("serve", "--port", "1", home=stepped_home)
    assert result.returncode == 2, result
    assert "error (config_invalid): workers in tiergate.toml is 'many', not a whole number" in result.stderr


def test_workers_whose_supervisor_was_killed_stop(stepped_home: HomeBuilder, db_url: str, tmp_path: Path) -> None:
    """SIGKILL cannot be passed on: each worker sees its supervisor gone and stops by itself."""
    with running_server(stepped_home.root, db_url, tmp_path / "server.log", args=WORKERS) as server:
        workers = workers_of(server)
        server.process.kill()
        server.process.wait(timeout=PATIENCE)
        deadline = time.monotonic() + PATIENCE
        while any(_running(pid) for pid in workers):
            assert time.monotonic() < deadline, [pid for pid in workers if _running(pid)]
            time.sleep(0.1)
