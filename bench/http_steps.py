"""Tier 2 completions through the server's doors, beside Engine.complete in-process in the same run.

    python bench/http_steps.py                       # 1 and 16 clients, SQLite in a temporary folder
    python bench/http_steps.py --steps 400 --clients 1 16 --json
    python bench/http_steps.py --database-url postgresql+psycopg://postgres@HOST:PORT/EMPTY_DB
    python bench/http_steps.py --workers 2             # `tiergate serve --workers 2`

- **in-process (baseline)**: ``Engine.complete`` called in a loop, one run after another.
- **API**: ``POST /api/runs/{run}/steps/{step}/complete`` from N client threads, each on its
  own keep-alive connection (the standard library's ``http.client``: real sockets and HTTP/1.1,
  at a fraction of a full client's CPU, so the bench measures the server rather than itself),
  each working through its own runs, against ``tiergate serve`` started as a subprocess on
  127.0.0.1.
- **MCP**: ``complete_step`` over MCP streamable HTTP, N sessions at once, each a thread with its
  own keep-alive connection (``bench/mcp_client.py``: ``initialize`` once, then ``tools/call``
  POSTs, on ``http.client`` as the API's clients); or, with ``--mcp-client sdk``, the official
  SDK's client, in the bench's own process or spread over ``--mcp-processes`` client processes
  (it costs 2 to 3 ms of CPU a call on the same 2 cores: docs/performance.md).

Each client completes ``--steps / N`` steps; the rate is steps per second over the wall time
of all clients, with the p50 and p99 latency of one completion. Beside them, CPU milliseconds
per completion: the server's (``/proc/PID/stat`` of the ``tiergate serve`` process and its
children, read before and after each line; that figure moves little with the machine's load,
where rates move a lot) and the bench process's own (its clients', or the in-process engine's).
The goal (issue 13): the API's rate, and MCP's, with 16 clients at least 0.5 of the in-process rate.
"""

from __future__ import annotations

import argparse
import http.client
import json
import multiprocessing
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

import anyio
import httpx2

from mcp_client import McpClient  # bench/mcp_client.py, beside this script
from tiergate.credentials import Credentials
from tiergate.engine import Engine

STEPS_PER_RUN = 10
#: Completions done untimed before the first line, in-process and through the server.
WARM_UP = 20
CHECKLIST = "id: bench\ntitle: Bench\nowner: lead\nexpected_minutes: 5\nsteps:\n" + "".join(
    f"  - id: s{i}\n    title: Step {i}\n    done_when: {{type: object, required: [note], "
    f"properties: {{note: {{type: string}}}}}}\n" for i in range(STEPS_PER_RUN))
CATALOG = ("processes:\n  - id: bench\n    title: Bench\n    area: bench\n    owner: lead\n    expected_minutes: 5\n"
           "    facts: {compliance_critical: false, touches_live_systems: false, client_data: false, structured: true}\n")
ROLES = "roles:\n  lead:\n    description: Leads.\n    members: [human:lead]\n"
REPO = Path(__file__).resolve().parents[1]


def make_home(root: Path) -> Path:
    for relative, text in (("checklists/bench.yaml", CHECKLIST), ("tiers/catalog.yaml", CATALOG),
                           ("tiers/roles.yaml", ROLES)):
        (root / relative).parent.mkdir(parents=True, exist_ok=True)
        (root / relative).write_text(text)
    for relative in ("decisions/tier_routing.dmn",):
        (root / relative).parent.mkdir(parents=True, exist_ok=True)
        (root / relative).write_bytes((REPO / relative).read_bytes())
    return root


def summary(name: str, clients: int, latencies: list[float], wall: float) -> dict[str, Any]:
    ordered = sorted(latencies)
    return {"door": name, "clients": clients, "steps": len(ordered), "rate": len(ordered) / wall,
            "p50_ms": 1000 * statistics.median(ordered),
            "p99_ms": 1000 * ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]}


_TICK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def server_cpu(pid: int | None) -> float | None:
    """CPU seconds (user + system) of process ``pid`` and its live descendants, from /proc (None: no /proc)."""
    if pid is None:
        return None
    try:
        stats = {}
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                try:
                    text = (entry / "stat").read_text()
                except OSError:
                    continue
                fields = text[text.rindex(")") + 2:].split()  # after "pid (comm) "
                stats[int(entry.name)] = (int(fields[1]), int(fields[11]) + int(fields[12]))  # ppid, utime + stime
    except OSError:
        return None
    if pid not in stats:
        return None
    tree, grew = {pid}, True
    while grew:
        more = {child for child, (parent, _) in stats.items() if parent in tree} - tree
        tree |= more
        grew = bool(more)
    return sum(stats[p][1] for p in tree) / _TICK


def measured(pid: int | None, work: Any) -> dict[str, Any]:
    """``work()``'s summary with the CPU per step of the server (``pid``) and of this process."""
    server0, own0 = server_cpu(pid), time.process_time()
    result: dict[str, Any] = work()
    server1, own1 = server_cpu(pid), time.process_time()
    steps = max(1, result["steps"])
    result["server_cpu_ms"] = None if server0 is None or server1 is None else 1000 * (server1 - server0) / steps
    result["own_cpu_ms"] = 1000 * (own1 - own0) / steps
    return result


def in_process(engine: Engine, steps: int) -> dict[str, Any]:
    latencies: list[float] = []
    began = time.perf_counter()
    while len(latencies) < steps:
        run = engine.start("bench", {}, actor="agent:bench").id
        for i in range(min(STEPS_PER_RUN, steps - len(latencies))):
            t0 = time.perf_counter()
            engine.complete(run, f"s{i}", {"note": "done"}, actor="agent:bench")
            latencies.append(time.perf_counter() - t0)
    return summary("in-process", 1, latencies, time.perf_counter() - began)


def api(url: str, token: str, clients: int, steps: int) -> dict[str, Any]:
    latencies: list[float] = []
    lock = threading.Lock()
    address = url.removeprefix("http://")
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    evidence = json.dumps({"evidence": {"note": "done"}})
    start = json.dumps({"process": "bench", "data": {}})

    failures: list[BaseException] = []

    def post(conn: http.client.HTTPConnection, path: str, body: str) -> tuple[int, bytes]:
        conn.request("POST", path, body=body, headers=headers)
        answer = conn.getresponse()
        return answer.status, answer.read()

    def client() -> None:
        mine: list[float] = []
        conn = http.client.HTTPConnection(address, timeout=120)  # one keep-alive connection per client
        try:
            while len(mine) < steps // clients:
                status, body = post(conn, "/api/runs", start)
                assert status == 201, body
                run = json.loads(body)["data"]["id"]
                for i in range(min(STEPS_PER_RUN, steps // clients - len(mine))):
                    t0 = time.perf_counter()
                    status, body = post(conn, f"/api/runs/{run}/steps/s{i}/complete", evidence)
                    mine.append(time.perf_counter() - t0)
                    assert status == 200, body
        except BaseException as err:  # noqa: BLE001 - said after the other clients finish
            failures.append(err)
        finally:
            conn.close()
        with lock:
            latencies.extend(mine)

    threads = [threading.Thread(target=client) for _ in range(clients)]
    began = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if failures:
        raise failures[0]
    return summary("API", clients, latencies, time.perf_counter() - began)


def mcp(url: str, token: str, clients: int, steps: int, processes: int = 1, sdk: bool = False) -> dict[str, Any]:
    """``clients`` MCP sessions. By default each a thread with its own keep-alive connection
    (``mcp_client.McpClient``: ``http.client``, as the API's clients), so the bench measures the
    server. With ``sdk``, the official SDK's client (about 2 to 3 ms of CPU a call on the same
    cores), spread over up to ``processes`` client processes."""
    if not sdk:
        began = time.perf_counter()
        cpu = time.process_time()
        latencies = mcp_threads(url, token, clients, steps // clients)
        result = summary("MCP", clients, latencies, time.perf_counter() - began)
        result["client_cpu_ms"] = 1000 * (time.process_time() - cpu) / len(latencies)
        result["client_processes"] = 1
        result["client"] = "http.client"
        return result
    processes = max(1, min(processes, clients))
    shares = [clients // processes + (1 if i < clients % processes else 0) for i in range(processes)]
    if processes == 1:
        began = time.perf_counter()
        latencies, cpu, _ = mcp_sessions(url, token, clients, steps // clients)
        result = summary("MCP", clients, latencies, time.perf_counter() - began)
    else:
        context = multiprocessing.get_context("spawn")
        go, answers = context.Event(), context.Queue()
        workers = [context.Process(target=mcp_process, args=(url, token, share, steps // clients, go, answers))
                   for share in shares]
        for worker in workers:
            worker.start()
        for _ in workers:
            assert answers.get(timeout=120) == "ready"
        began = time.perf_counter()  # CLOCK_MONOTONIC: the same clock in every process
        go.set()
        parts = [answers.get(timeout=600) for _ in workers]
        for worker in workers:
            worker.join()
        latencies = [latency for part in parts for latency in part[0]]
        cpu = sum(part[1] for part in parts)
        result = summary("MCP", clients, latencies, max(part[2] for part in parts) - began)
    result["client_cpu_ms"] = 1000 * cpu / len(latencies)  # per completion (and its share of starts)
    result["client_processes"] = processes
    result["client"] = "SDK"
    return result


def mcp_threads(url: str, token: str, clients: int, per_client: int) -> list[float]:
    """``clients`` threads, each an ``McpClient`` session working through its own runs: the latencies."""
    latencies: list[float] = []
    lock = threading.Lock()
    failures: list[BaseException] = []
    evidence = {"note": "done"}

    def client() -> None:
        mine: list[float] = []
        session = McpClient(url.removeprefix("http://"), token)
        try:
            session.initialize()
            while len(mine) < per_client:
                run = session.call_tool("start_run", {"process": "bench", "data": {}})["structuredContent"]["data"]["id"]
                for i in range(min(STEPS_PER_RUN, per_client - len(mine))):
                    t0 = time.perf_counter()
                    answer = session.call_tool("complete_step", {"run": run, "step": f"s{i}", "evidence": evidence})
                    mine.append(time.perf_counter() - t0)
                    assert not answer.get("isError"), answer
        except BaseException as err:  # noqa: BLE001 - said after the other clients finish
            failures.append(err)
        finally:
            session.close()
        with lock:
            latencies.extend(mine)

    threads = [threading.Thread(target=client) for _ in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if failures:
        raise failures[0]
    return latencies


def mcp_process(url: str, token: str, clients: int, per_client: int, go: Any, answers: Any) -> None:
    import mcp.client.streamable_http  # noqa: F401 - imported before the clock starts

    answers.put("ready")
    go.wait()
    answers.put(mcp_sessions(url, token, clients, per_client))


def mcp_sessions(url: str, token: str, clients: int, per_client: int) -> tuple[list[float], float, float]:
    """Run ``clients`` sessions in this process: their latencies, this process's CPU seconds, the end time."""
    from mcp import ClientSession
    from mcp.client.streamable_http import streamable_http_client

    latencies: list[float] = []

    async def client() -> None:
        async with httpx2.AsyncClient(headers={"Authorization": f"Bearer {token}"}, timeout=120) as http, \
                streamable_http_client(f"{url}/mcp", http_client=http) as (read, write), \
                ClientSession(read, write) as session:
            await session.initialize()
            done = 0
            while done < per_client:
                started = await session.call_tool("start_run", {"process": "bench", "data": {}})
                run = started.structured_content["data"]["id"]
                for i in range(min(STEPS_PER_RUN, per_client - done)):
                    t0 = time.perf_counter()
                    answer = await session.call_tool("complete_step", {"run": run, "step": f"s{i}",
                                                                       "evidence": {"note": "done"}})
                    latencies.append(time.perf_counter() - t0)
                    assert not answer.is_error, answer
                    done += 1

    async def main() -> None:
        async with anyio.create_task_group() as group:
            for _ in range(clients):
                group.start_soon(client)

    cpu = time.process_time()
    anyio.run(main)
    return latencies, time.process_time() - cpu, time.perf_counter()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def tiergate_serve(home: Path, url_db: str, workers: int = 1) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """``tiergate serve`` over ``home`` and ``url_db`` on a free port of 127.0.0.1, as a subprocess,
    once every one of its ``workers`` answers ``/healthz``: its URL and its process; stopped after."""
    port = free_port()
    env = {**os.environ, "TIERGATE_DATABASE_URL": url_db}
    server = subprocess.Popen([sys.executable, "-m", "tiergate", "--home", str(home), "serve", "--port", str(port),
                               "--workers", str(workers)], env=env, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(600):
            try:
                if httpx2.get(f"{url}/healthz").status_code == 200:
                    break
            except httpx2.TransportError:
                time.sleep(0.1)
        started: set[int] = set()
        for _ in range(1000):  # until every worker has started (each answers with its process id)
            started.add(httpx2.get(f"{url}/healthz").json()["data"]["pid"])
            if len(started) == workers:
                break
        yield url, server
    finally:
        server.terminate()
        server.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=320, help="completions per measurement")
    parser.add_argument("--clients", type=int, nargs="+", default=[1, 16])
    parser.add_argument("--doors", nargs="+", choices=["api", "mcp"], default=["api", "mcp"],
                        help="the server's doors to measure (default: both)")
    parser.add_argument("--database-url", default=None, help="an empty database (default: SQLite in a temp folder)")
    parser.add_argument("--workers", type=int, default=1, help="server processes (`tiergate serve --workers N`)")
    parser.add_argument("--mcp-client", choices=["plain", "sdk"], default="plain",
                        help="MCP's clients: threads on http.client (default), or the official SDK's client")
    parser.add_argument("--mcp-processes", type=int, default=1,
                        help="client processes the SDK's MCP sessions are spread over (with --mcp-client sdk)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        home = make_home(Path(folder) / "home")
        url_db = args.database_url or f"sqlite:///{Path(folder) / 'tiergate.db'}"
        engine = Engine(home=home, database_url=url_db)
        engine.raw_database().upgrade()
        token = Credentials(engine).issue_token("agent:bench", by="os:bench")["token"]
        in_process(engine, WARM_UP)  # untimed: the first steps load and compile what later ones reuse
        results = [measured(None, lambda: in_process(engine, args.steps))]
        try:
            with tiergate_serve(home, url_db, args.workers) as (url, server):
                api(url, token, 1, WARM_UP)  # untimed, as in-process
                doors = (("api", api), ("mcp", lambda *given: mcp(*given, args.mcp_processes, args.mcp_client == "sdk")))
                for door, measure in doors:
                    if door in args.doors:
                        for clients in args.clients:
                            results.append(measured(server.pid, lambda door=measure, n=clients: door(
                                url, token, n, args.steps)))
            # again, after: the baseline at the end of the run
            results.append(measured(None, lambda: in_process(engine, args.steps)))
        finally:
            engine.close()
    baseline = statistics.mean(r["rate"] for r in results if r["door"] == "in-process")
    for result in results:
        result["ratio"] = result["rate"] / baseline
    if args.json:
        print(json.dumps(results, indent=2))
        return
    print(f"load average {' '.join(f'{x:.2f}' for x in os.getloadavg())} (at the end)")
    print(f"{'door':<11} {'clients':>7} {'steps':>6} {'steps/s':>8} {'ratio':>6} {'p50 ms':>7} {'p99 ms':>7} "
          f"{'server CPU ms':>13} {'own CPU ms':>10}")
    for r in results:
        server_ms = "" if r["server_cpu_ms"] is None else f"{r['server_cpu_ms']:.2f}"
        print(f"{r['door']:<11} {r['clients']:>7} {r['steps']:>6} {r['rate']:>8.1f} {r['ratio']:>6.2f} "
              f"{r['p50_ms']:>7.1f} {r['p99_ms']:>7.1f} {server_ms:>13} {r['own_cpu_ms']:>10.2f}")
    for r in results:
        if "client_cpu_ms" in r:
            print(f"MCP, {r['clients']} clients ({r['client']}) in {r['client_processes']} process(es): the clients' CPU "
                  f"{r['client_cpu_ms']:.2f} ms per completion")


if __name__ == "__main__":
    main()
