"""Tier 2 completions through the server's doors, beside Engine.complete in-process in the same run.

    python bench/http_steps.py                       # 1 and 16 clients, SQLite in a temporary folder
    python bench/http_steps.py --steps 400 --clients 1 16 --json
    python bench/http_steps.py --database-url postgresql+psycopg://postgres@HOST:PORT/EMPTY_DB
    python bench/http_steps.py --workers 2             # `tiergate serve --workers 2`

- **in-process (baseline)**: ``Engine.complete`` called in a loop, one run after another.
- **API**: ``POST /api/runs/{run}/steps/{step}/complete`` from N client threads (one keep-alive
  connection each, ``httpx2``), each working through its own runs, against ``tiergate serve``
  started as a subprocess on 127.0.0.1.
- **MCP**: ``complete_step`` over MCP streamable HTTP (the SDK's client), N sessions at once,
  in the bench's own process, or spread over ``--mcp-processes`` client processes (on the shared
  2-core machine that cost the clients more CPU a call, not less: docs/performance.md).

Each client completes ``--steps / N`` steps; the rate is steps per second over the wall time
of all clients, with the p50 and p99 latency of one completion. The goal (issue 13): the API's
rate with 16 clients at least 0.5 of the in-process rate.
"""

from __future__ import annotations

import argparse
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
from pathlib import Path
from typing import Any

import anyio
import httpx2

from tiergate.credentials import Credentials
from tiergate.engine import Engine

STEPS_PER_RUN = 10
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

    def client() -> None:
        mine: list[float] = []
        with httpx2.Client(base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=120) as http:
            while len(mine) < steps // clients:
                run = http.post("/api/runs", json={"process": "bench", "data": {}}).json()["data"]["id"]
                for i in range(min(STEPS_PER_RUN, steps // clients - len(mine))):
                    t0 = time.perf_counter()
                    answer = http.post(f"/api/runs/{run}/steps/s{i}/complete", json={"evidence": {"note": "done"}})
                    mine.append(time.perf_counter() - t0)
                    assert answer.status_code == 200, answer.text
        with lock:
            latencies.extend(mine)

    threads = [threading.Thread(target=client) for _ in range(clients)]
    began = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return summary("API", clients, latencies, time.perf_counter() - began)


def mcp(url: str, token: str, clients: int, steps: int, processes: int = 1) -> dict[str, Any]:
    """``clients`` MCP sessions (the SDK's client), spread over up to ``processes`` client processes
    so that the clients' own CPU (about 1.5 ms a call) is not held to one interpreter lock."""
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
    return result


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=320, help="completions per measurement")
    parser.add_argument("--clients", type=int, nargs="+", default=[1, 16])
    parser.add_argument("--database-url", default=None, help="an empty database (default: SQLite in a temp folder)")
    parser.add_argument("--workers", type=int, default=1, help="server processes (`tiergate serve --workers N`)")
    parser.add_argument("--mcp-processes", type=int, default=1, help="client processes the MCP sessions are spread over")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        home = make_home(Path(folder) / "home")
        url_db = args.database_url or f"sqlite:///{Path(folder) / 'tiergate.db'}"
        engine = Engine(home=home, database_url=url_db)
        engine.raw_database().upgrade()
        token = Credentials(engine).issue_token("agent:bench", by="os:bench")["token"]
        results = [in_process(engine, args.steps)]
        port = free_port()
        env = {**os.environ, "TIERGATE_DATABASE_URL": url_db}
        server = subprocess.Popen([sys.executable, "-m", "tiergate", "--home", str(home), "serve", "--port", str(port),
                                   "--workers", str(args.workers)],
                                  env=env, stderr=subprocess.DEVNULL)
        url = f"http://127.0.0.1:{port}"
        try:
            for _ in range(600):
                try:
                    if httpx2.get(f"{url}/healthz").status_code == 200:
                        break
                except httpx2.TransportError:
                    time.sleep(0.1)
            workers: set[int] = set()
            for _ in range(1000):  # until every worker has started (each answers with its process id)
                workers.add(httpx2.get(f"{url}/healthz").json()["data"]["pid"])
                if len(workers) == args.workers:
                    break
            for clients in args.clients:
                results.append(api(url, token, clients, args.steps))
            for clients in args.clients:
                results.append(mcp(url, token, clients, args.steps, args.mcp_processes))
            results.append(in_process(engine, args.steps))  # again, after: the baseline at the end of the run
        finally:
            server.terminate()
            server.wait()
            engine.close()
    baseline = statistics.mean(r["rate"] for r in results if r["door"] == "in-process")
    for result in results:
        result["ratio"] = result["rate"] / baseline
    if args.json:
        print(json.dumps(results, indent=2))
        return
    print(f"{'door':<11} {'clients':>7} {'steps':>6} {'steps/s':>8} {'ratio':>6} {'p50 ms':>7} {'p99 ms':>7}")
    for r in results:
        print(f"{r['door']:<11} {r['clients']:>7} {r['steps']:>6} {r['rate']:>8.1f} {r['ratio']:>6.2f} "
              f"{r['p50_ms']:>7.1f} {r['p99_ms']:>7.1f}")
    for r in results:
        if "client_cpu_ms" in r:
            print(f"MCP, {r['clients']} clients in {r['client_processes']} process(es): the clients' CPU "
                  f"{r['client_cpu_ms']:.2f} ms per completion")


if __name__ == "__main__":
    main()
