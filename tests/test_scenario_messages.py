"""`tiergate test`: a scenario sends a Tier 1 run a message, as `tiergate message` does."""

from __future__ import annotations

from pathlib import Path
from typing import Callable

from support import CLIResult
from test_tier1_messages import WAIT_FOR_CI, home_with


def test_a_scenario_message_reaches_its_run_and_covers_the_catch(tmp_path: Path,
                                                                cli: Callable[..., CLIResult]) -> None:
    home = home_with(tmp_path, {"ci": WAIT_FOR_CI})
    home.write("processes/tests/ci.yaml", """\
scenarios:
  - name: the CI system reports the build, then the change is deployed
    actor: agent:a
    start: {change_id: CH-7}
    steps:
      - complete: submit
        evidence: {}
      - expect: {ready: []}
      - message: ci_passed
        correlate: {change_id: CH-8}
        refused: no_waiting_run
      - message: ci_passed
        actor: agent:ci
        correlate: {change_id: CH-7}
        data: {build: 4711}
      - expect:
          ready: [deploy]
          data: {build: 4711}
          events: [message_received wait_ci, step_ready deploy]
          path: [submit, wait_ci, deploy]
      - complete: deploy
        evidence: {}
      - expect: {status: completed}
""")
    result = cli("test", "--json", home=home)
    assert result.returncode == 0, result
    [item] = [i for i in result.json["data"]["coverage"]["processes"] if i["process"] == "ci"]
    assert (item["uncovered_steps"], item["uncovered_flows"]) == ([], [])


def test_a_message_no_run_waits_for_fails_the_scenario_at_its_line(tmp_path: Path,
                                                                  cli: Callable[..., CLIResult]) -> None:
    home = home_with(tmp_path, {"ci": WAIT_FOR_CI})
    home.write("processes/tests/ci.yaml", """\
scenarios:
  - name: the message comes before the run waits for it
    actor: agent:a
    start: {change_id: CH-7}
    steps:
      - message: ci_passed
        correlate: {change_id: CH-7}
""")
    result = cli("test", "--json", home=home)
    assert result.returncode == 1
    [failure] = result.json["error"]["details"]["scenarios"][0]["failures"]
    assert failure["at"] == "processes/tests/ci.yaml:6"
    assert failure["message"].startswith("message ci_passed: refused (no_waiting_run):")


def test_correlate_and_data_belong_to_a_message(tmp_path: Path, cli: Callable[..., CLIResult]) -> None:
    home = home_with(tmp_path, {"ci": WAIT_FOR_CI})
    home.write("processes/tests/ci.yaml", """\
scenarios:
  - name: data on a completion
    actor: agent:a
    start: {change_id: CH-7}
    steps:
      - complete: submit
        data: {build: 1}
""")
    result = cli("test", "--json", home=home)
    assert result.returncode == 1
    problems = result.json["error"]["details"]["scenarios"][0]["problems"]
    assert any("correlate and data belong to a message" in p and "ci.yaml:6" in p for p in problems), problems
