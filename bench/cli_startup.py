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

Goals (issue 11): `--help` at most 3x the baseline, `status` at most 6x.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
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
GOALS = {"--help": 3.0, "status": 6.0}


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
        for name, build in commands.items():  # warm the file cache and the bytecode once
            _timed(build(_start(env, home) if name == "complete" else reading), env, home)
        times: dict[str, list[float]] = {name: [] for name in commands}
        ratios: dict[str, list[float]] = {name: [] for name in commands if name != "baseline"}
        for _ in range(args.rounds):
            run = _start(env, home)
            order = list(commands)
            random.shuffle(order)
            taken = {name: _timed(commands[name](run), env, home) for name in order}
            for name, seconds in taken.items():
                times[name].append(seconds)
                if name != "baseline":
                    ratios[name].append(seconds / taken["baseline"])

    report = {name: {"median_ms": round(statistics.median(values) * 1000, 1),
                     "ratio": round(statistics.median(ratios[name]), 2) if name in ratios else 1.0,
                     "goal": GOALS.get(name)}
              for name, values in times.items()}
    if args.json:
        print(json.dumps({"rounds": args.rounds, "python": sys.version.split()[0], "commands": report}, indent=2))
        return
    print(f"{args.rounds} rounds; each command as a whole process, ratio to `python3 -c \"import click\"` "
          "in the same round (median)")
    print(f"{'command':<10} {'median ms':>10} {'ratio':>7}  goal")
    for name, figures in report.items():
        goal = f"<= {figures['goal']}x" if figures["goal"] else ""
        print(f"{name:<10} {figures['median_ms']:>10} {figures['ratio']:>7}  {goal}")


if __name__ == "__main__":
    main()
