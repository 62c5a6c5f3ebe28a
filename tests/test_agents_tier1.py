"""Tier 1 guidance on real BPMN runs: the strict wrapper, and evidence from its words alone passing every gate."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, Callable

import pytest
import yaml

from agents_helpers import LiteralAgent, actor_for, current_step
from support import REPO, CLIResult
from tiergate.engine import Engine
from tiergate.errors import GateFailedError

TIER1 = ["knowledge-ingestion", "client-config-change", "release-pipeline", "pay-scenario-test"]


@pytest.fixture
def platform(repo_home: Path, make_engine: Callable[..., Engine]) -> Engine:
    pytest.importorskip("tiergate.runners.bpmn")
    return make_engine(repo_home)


@pytest.mark.parametrize("process", TIER1)
def test_a_literal_agent_finishes_each_tier1_process_from_the_words_alone(platform: Engine, process: str) -> None:
    """One step at a time, as the Tier 1 wrapper says. A step met again (a loop back) gets the next allowed values."""
    roles = yaml.safe_load((REPO / "tiers" / "roles.yaml").read_text())["roles"]
    run = platform.start(process, {}, actor="agent:literal")
    assert run.tier == 1
    done: list[str] = []
    for _ in range(40):
        guidance = platform.guide(run.id)["text"]
        step = current_step(guidance)
        if step is None:
            sent = re.search(r"`tiergate message (\S+)((?: --correlate [^ =]+=\S+)*) --data", guidance)
            if sent is None:
                break
            # The run waits for another system's message; its guidance names the sender's command: play the sender.
            correlate = dict(pair.split("=", 1) for pair in re.findall(r"--correlate (\S+)", sent.group(2)))
            platform.message(sent.group(1), correlate, {}, actor="agent:source-system")
            continue
        assert "The engine decides what comes next." in guidance
        agent = LiteralAgent(guidance)
        evidence = agent.evidence(step, seed=done.count(step))
        try:
            platform.complete(run.id, step, evidence, actor=actor_for(agent, step, roles))
        except GateFailedError as err:  # pragma: no cover - the message is the point
            pytest.fail(f"{process}/{step}: evidence from the words failed the gate: {err.message}\n"
                        f"evidence: {json.dumps(evidence)}\nguidance:\n{guidance}")
        done.append(step)
    assert platform.status(run.id).status == "completed", done
    assert "This run is completed: nothing more to do in it." in platform.guide(run.id)["text"]
    assert not [e for e in platform.log(run.id) if e["event"] in ("gate_failed", "refused")]


def test_tier1_guidance_over_the_cli_names_one_step_and_who_may_do_it(cli: Callable[..., CLIResult],
                                                                      repo_home: Path, platform: Engine) -> None:
    run = platform.start("knowledge-ingestion", {}, actor="agent:platform-bot")
    result = cli("guide", run.id, "--actor", "human:judy", "--json", home=repo_home)
    assert result.returncode == 0, result
    data: dict[str, Any] = result.json["data"]
    assert data["tier"] == 1 and data["template"] == "tiergate:guidance/templates/tier1.md.j2"
    text = data["text"]
    assert "## The step to do now: `extract_item` — Extract the knowledge item" in text
    assert "Who may do it: an agent." in text
    assert "**You (human:judy) cannot do this step**: it needs an agent; hand it over. Do not attempt it." in text
    assert f"`tiergate complete {run.id} extract_item --evidence '{{...}}' --actor human:judy`" in text
    assert data["ready"][0]["evidence_schema"]["required"][:2] == ["item_title", "knowledge_type"]
