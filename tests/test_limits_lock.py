"""Nothing slow under a write lock (issue 12): gates and expressions are judged before the write
transaction opens, so one hostile evaluation cannot hold up unrelated completions."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable

from support import DEMO
from tier1_helpers import bpmn, chain, flow, tier1_home, user
from tiergate.engine import Engine

# Runs for minutes under the generous budget its subprocess is given below.
SLOW = "sum(1 for i in range(100000) for j in range(100000) if i < 0) == 0"


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def test_one_hostile_evaluation_does_not_hold_up_fifty_unrelated_completions(
        tmp_path: Path, db_url: str, make_engine: Callable[..., Engine]) -> None:
    process = bpmn("slow", ('<bpmn:startEvent id="start"/>' + user("draft", "Draft")
                            + '<bpmn:exclusiveGateway id="gw" default="f_no"/>' + user("act", "Act")
                            + '<bpmn:endEvent id="end"/>' + chain("start", "draft", "gw")
                            + flow("f_yes", "gw", "act", SLOW) + flow("f_no", "gw", "end")
                            + chain("act", "end", prefix="g")), lanes={"agent": ["draft", "act"]})
    home = tier1_home(tmp_path / "home", {"slow": process}, tier2={"demo": DEMO})
    engine = make_engine(home)
    hostile_run = engine.start("slow", {}, actor="agent:bot").id
    runs = [engine.start("demo", {"ticket_id": f"T-{i}"}, actor="agent:bot").id for i in range(50)]
    env = {**os.environ, "TIERGATE_DATABASE_URL": db_url, "TIERGATE_LIMIT_TIER1_STEPS": str(10**12),
           "TIERGATE_LIMIT_TIER1_SECONDS": "600"}
    hostile = subprocess.Popen([sys.executable, "-m", "tiergate", "complete", hostile_run, "draft", "--evidence",
                                "{}", "--actor", "agent:bot"], cwd=home.root, env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        # Past start-up (a second or two of CPU): it is evaluating the condition now.
        while cpu_seconds(hostile.pid) < 5:
            assert hostile.poll() is None, "the hostile completion ended before its evaluation ran"
            time.sleep(0.1)
        for run in runs:
            info = engine.complete(run, "gather", {"summary": "a long enough summary", "severity": "S3"},
                                   actor="agent:bot")
            assert [s.id for s in info.ready_steps] == ["extra"]
        assert hostile.poll() is None  # still evaluating while all fifty went through
    finally:
        hostile.kill()
        hostile.wait()
    assert engine.status(hostile_run).ready_steps[0].id == "draft"
