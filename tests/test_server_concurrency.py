"""The server makes several engine calls at once: concurrent clients through real sockets lose
nothing and break no chain, and two clients racing for one step get one completion."""

from __future__ import annotations

import threading
from typing import Any, Callable

from support import CLIResult, HomeBuilder
from test_server import GATHER, Server, _issue, server  # noqa: F401 - the fixture


def test_concurrent_clients_through_the_api(server: Server, demo_home: HomeBuilder,  # noqa: F811
                                            cli: Callable[..., CLIResult], make_engine: Any) -> None:
    tokens = [_issue(cli, demo_home, f"agent:bot{i}")["token"] for i in range(8)]
    runs: dict[int, str] = {}
    failures: list[str] = []
    barrier = threading.Barrier(len(tokens))

    def work(i: int) -> None:
        with server.client(tokens[i]) as http:
            barrier.wait(timeout=120)
            started = http.post("/api/runs", json={"process": "demo", "data": {"ticket_id": f"T-{i}"}})
            if started.status_code != 201:
                failures.append(started.text)
                return
            runs[i] = run = started.json()["data"]["id"]
            for path, body in ((f"/api/runs/{run}/steps/gather/complete", {"evidence": GATHER}),
                               (f"/api/runs/{run}/steps/extra/skip", {"reason": "not needed"})):
                answer = http.post(path, json=body)
                if answer.status_code != 200:
                    failures.append(answer.text)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(len(tokens))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == [] and len(runs) == len(tokens)
    engine = make_engine(demo_home)
    for run in runs.values():
        assert engine.status(run).ready_steps[0].id == "review"
    assert engine.verify_log()["ok"]

    # Eight clients race to complete one step: exactly one completion, the others refused and logged.
    with server.client(tokens[0]) as http:
        race = http.post("/api/runs", json={"process": "demo", "data": {"ticket_id": "T-99"}}).json()["data"]["id"]
    codes: list[int] = []

    def complete(i: int) -> None:
        with server.client(tokens[i]) as http:
            barrier.wait(timeout=120)
            codes.append(http.post(f"/api/runs/{race}/steps/gather/complete", json={"evidence": GATHER}).status_code)

    threads = [threading.Thread(target=complete, args=(i,)) for i in range(len(tokens))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(codes) == [200] + [409] * (len(tokens) - 1)
    log = engine.log(race)
    assert [e["event"] for e in log].count("step_completed") == 1
    assert sum(1 for e in log if e["event"] == "refused") == len(tokens) - 1
    assert engine.verify_log()["ok"]
