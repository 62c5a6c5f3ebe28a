"""How long a `tiergate` command takes as a whole process, against `python3 -c "import click"`.

    python bench/cli_startup.py            # 15 rounds
    python bench/cli_startup.py -n 30 --json

Agents with a shell call the CLI once per step, so what a command costs before it does
anything counts. Each round runs, one after another in a shuffled order, the baseline
(`python3 -c "import click"`) and each command as a fresh process: `--help`, `--version`,
`status RUN`, `guide RUN`, `runs`, and `complete RUN STEP` (on a run started for that round,
so every completion does real work). The home is a copy of this repository's definitions with
a SQLite database in a temporary folder. The report gives each command's median wall time and
the median of its per-round ratios to the baseline of the same round.

Goals (issue 11): `--help` at most 3x the baseline, `status` at most 6x. With `--client`, the
bench also starts `tiergate serve` on a free port of 127.0.0.1, issues a token, and times
`status RUN` as a client of it (`TIERGATE_URL`, `TIERGATE_TOKEN`): no database library is
loaded then. Goal (issue 13): at most 4x.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
TRIAGE = {"ticket_id": "SUP-10234", "client_id": "CL-0042", "client_tier": "gold",
          "summary": "Payslips show the wrong overtime rate since the last release"}
GATHER = {"duplicate_of": None, "next_pay_date": "2026-12-24",
          "context_notes": "Overtime element changed in release 24.3; the client ran a pay preview"}
GOALS = {"--help": 3.0, "status": 6.0, "status (client)": 4.0}


def _serve(env: dict[str, str], home: Path) -> tuple[subprocess.Popen[bytes], dict[str, str]]:
    """`tiergate serve` on a free port, and the environment of a client with a fresh token."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    token = json.loads(subprocess.run([sys.executable, "-m", "tiergate", "tokens", "issue", "agent:triage-bot",
                                       "--json"], env=env, cwd=home, capture_output=True, text=True,
                                      check=True).stdout)["data"]["token"]
    server = subprocess.Popen([sys.executable, "-m", "tiergate", "serve", "--port", str(port)], env=env, cwd=home,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    for _ in range(300):
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                break
        except OSError:
            time.sleep(0.1)
    client = {k: v for k, v in env.items() if k != "TIERGATE_ACTOR"}
    client.update(TIERGATE_URL=url, TIERGATE_TOKEN=token)
    return server, client


def _timed(cmd: list[str], env: dict[str, str], cwd: Path) -> float:
    started = time.perf_counter()
    proc = subprocess.run(cmd, env=env, cwd=cwd, capture_output=True, text=True)
    elapsed = time.perf_counter() - started
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stderr}")
    return elapsed


def _start(env: dict[str, str], home: Path) -> str:
    proc = subprocess.run([sys.executable, "-m", "tiergate", "start", "support-triage", "--quiet", "--data",
                           json.dumps(TRIAGE)], env=env, cwd=home, capture_output=True, text=True, check=True)
    return proc.stdout.strip()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-n", "--rounds", type=int, default=15)
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    parser.add_argument("--client", action="store_true", help="also time `status` as a client of `tiergate serve`")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="tiergate-cli-bench-") as folder:
        home = Path(folder) / "home"
        for part in ("tiers", "checklists", "processes", "decisions"):
            shutil.copytree(REPO / part, home / part)
        # Bytecode is cached as for any installed program (an environment that forbids writing it
        # would have tiergate's modules compiled on every call, and click's not).
        env = {k: v for k, v in os.environ.items()
               if not k.startswith("TIERGATE_") and k != "PYTHONDONTWRITEBYTECODE"}
        env.update(TIERGATE_ACTOR="agent:triage-bot", NO_COLOR="1")
        tg = [sys.executable, "-m", "tiergate"]
        # One run for the read commands; a fresh run per round for `complete`.
        reading = _start(env, home)
        commands: dict[str, Any] = {
            "baseline": lambda run: [sys.executable, "-c", "import click"],
            "--help": lambda run: [*tg, "--help"],
            "--version": lambda run: [*tg, "--version"],
            "status": lambda run: [*tg, "status", reading],
            "guide": lambda run: [*tg, "guide", reading],
            "runs": lambda run: [*tg, "runs"],
            "complete": lambda run: [*tg, "complete", run, "gather-context", "--evidence", json.dumps(GATHER)],
        }
        server = None
        envs = {name: env for name in commands}
        if args.client:
            server, envs["status (client)"] = _serve(env, home)
            commands["status (client)"] = lambda run: [*tg, "status", reading]
        times: dict[str, list[float]] = {name: [] for name in commands}
        ratios: dict[str, list[float]] = {name: [] for name in commands if name != "baseline"}
        try:
            _measure(commands, envs, home, reading, args.rounds, times, ratios)
        finally:
            if server is not None:
                server.terminate()
                server.wait(timeout=30)
    _report(args, times, ratios)


def _measure(commands: dict[str, Any], envs: dict[str, dict[str, str]], home: Path, reading: str, rounds: int,
             times: dict[str, list[float]], ratios: dict[str, list[float]]) -> None:
    """Warm up once, then ``rounds`` rounds of every command in a shuffled order."""
    env = envs["baseline"]
    for name, build in commands.items():  # warm the file cache and the bytecode once
        _timed(build(_start(env, home) if name == "complete" else reading), envs[name], home)
    for _ in range(rounds):
        run = _start(env, home)
        order = list(commands)
        random.shuffle(order)
        taken = {name: _timed(commands[name](run), envs[name], home) for name in order}
        for name, seconds in taken.items():
            times[name].append(seconds)
            if name != "baseline":
                ratios[name].append(seconds / taken["baseline"])


def _report(args: argparse.Namespace, times: dict[str, list[float]], ratios: dict[str, list[float]]) -> None:
    report = {name: {"median_ms": round(statistics.median(values) * 1000, 1),
                     "ratio": round(statistics.median(ratios[name]), 2) if name in ratios else 1.0,
                     "goal": GOALS.get(name)}
              for name, values in times.items()}
    if args.json:
        print(json.dumps({"rounds": args.rounds, "python": sys.version.split()[0], "commands": report}, indent=2))
        return
    print(f"{args.rounds} rounds; each command as a whole process, ratio to `python3 -c \"import click\"` "
          "in the same round (median)")
    print(f"{'command':<16} {'median ms':>10} {'ratio':>7}  goal")
    for name, figures in report.items():
        goal = f"<= {figures['goal']}x" if figures["goal"] else ""
        print(f"{name:<16} {figures['median_ms']:>10} {figures['ratio']:>7}  {goal}")


if __name__ == "__main__":
    main()
