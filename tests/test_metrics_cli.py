"""`tiergate metrics`, `gaps`, `gaps export` and `report` in real subprocesses: envelopes, text, errors."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Callable

import pytest

from support import CLIResult, HomeBuilder
from test_gaps import LOW
from test_metrics import T0, metrics_home, tell_the_story
from tiergate.engine import Engine

Cli = Callable[..., CLIResult]


@pytest.fixture
def home(tmp_path: Path, make_engine: Callable[..., Engine]) -> HomeBuilder:
    """The story of test_metrics.py in the test database (the CLI's clock is the real one)."""
    built = metrics_home(tmp_path / "home")
    clock: list[datetime] = [T0]
    tell_the_story(make_engine(built, clock=lambda: clock[0]), clock)
    return built


def test_metrics_json_envelope(cli: Cli, home: HomeBuilder) -> None:
    result = cli("metrics", "--json", home=home)
    assert result.returncode == 0, result
    answer = result.json
    assert answer["ok"] is True
    data = answer["data"]
    assert [(p["process"], p["tier"], p["runs"]) for p in data["processes"]] == [("demo", 2, 7), ("notes", 3, 2)]
    # Now is long after the story: every run still open is abandoned.
    assert data["totals"]["outcomes"] == {"completed": 4, "cancelled": 2, "failed": 0, "abandoned": 3,
                                          "in_progress": 0}
    assert data["totals"]["deviations"]["total"] == 11


def test_metrics_for_people(cli: Cli, home: HomeBuilder) -> None:
    result = cli("metrics", "--process", "demo", home=home)
    assert result.returncode == 0, result
    lines = result.stdout.splitlines()
    assert lines[0].startswith("metrics as of ") and lines[0].endswith("(process demo)")
    header = next(line for line in lines if line.startswith("process"))
    assert header.split() == ["process", "tier", "runs", "done/settled", "done/all", "clean", "dev/run", "median",
                              "min", "expected", "over", "abandoned", "open", "human"]
    # All 7 runs are settled here (the clock is past every run's abandon limit): 3 completed, 1 clean.
    assert next(line for line in lines if line.startswith("demo")).split()[:9] == \
        ["demo", "2", "7", "43%", "(3/7)", "43%", "14%", "1.5714", "12.0"]
    assert "done/all      completed runs of all runs, those still in progress included" in result.stdout
    assert "deviations: out_of_order 1, wrong_actor 2, refused_other 1, gate_failed 3, skipped 2, escalated 1, " \
           "off_path 1" in result.stdout
    assert "steps of demo (tier 2)" in result.stdout
    gather = next(line for line in lines if line.startswith("gather"))
    assert gather.split()[:8] == ["gather", "7", "5", "0", "2", "3", "1", "50%"]


def test_metrics_filters_and_bad_input(cli: Cli, home: HomeBuilder) -> None:
    assert cli("metrics", "--tier", "3", "--json", home=home).json["data"]["totals"]["runs"] == 2
    assert cli("metrics", "--since", "2025-01-06T11:00:00Z", "--json", home=home).json["data"]["totals"]["runs"] == 5
    bad = cli("metrics", "--since", "yesterday", "--json", home=home)
    assert bad.returncode == 2
    assert bad.json["error"]["code"] == "invalid_since"
    assert bad.json["error"]["message"] == ("--since 'yesterday' is not a date. Give YYYY-MM-DD (midnight UTC) or "
                                            "an ISO 8601 time such as 2025-03-01T09:30:00Z.")
    people = cli("metrics", "--tier", "9", home=home)
    assert people.returncode == 2 and people.stderr.strip() == "error (usage): tier 9 does not exist. Use --tier 1, " \
                                                                "2 or 3."
    unknown = cli("metrics", "--process", "payroll", "--json", home=home)
    assert unknown.returncode == 1 and unknown.json["error"]["code"] == "not_found"


def test_gaps_then_gaps_again(cli: Cli, home: HomeBuilder) -> None:
    home.write("tiers/gaps.yaml", LOW)
    first = cli("gaps", "--json", home=home)
    assert first.returncode == 0, first
    assert first.json["data"]["counts"]["new"] >= 7
    kinds = {(g["kind"], g["process"], g["step"]) for g in first.json["data"]["gaps"]}
    assert ("gate_failure", "demo", "gather") in kinds and ("abandoned_runs", "notes", None) in kinds
    again = cli("gaps", home=home)
    assert again.returncode == 0
    assert again.stdout.startswith("gaps: 0 new, 0 reopened, ")
    assert "open    gate_failure      demo     2     gather" in again.stdout


def test_gaps_export(cli: Cli, home: HomeBuilder, tmp_path: Path) -> None:
    home.write("tiers/gaps.yaml", LOW)
    markdown = cli("gaps", "export", home=home)
    assert markdown.returncode == 0 and markdown.stdout.startswith("# Process gaps as of ")
    target = tmp_path / "gaps.json"
    wrote = cli("gaps", "export", "--format", "json", "--output", str(target), "--json", home=home)
    assert wrote.returncode == 0, wrote
    assert wrote.json["data"] == {"format": "json", "items": len(json.loads(target.read_text())["items"]),
                                  "output": str(target)}
    assert {"title", "owner", "category", "suggested_action", "first_seen", "key"} <= \
        set(json.loads(target.read_text())["items"][0])
    nowhere = cli("gaps", "export", "--output", str(tmp_path / "no" / "gaps.md"), home=home)
    assert nowhere.returncode == 2 and "give a file in an existing folder" in nowhere.stderr
    assert cli("gaps", "export", "--format", "xml", home=home).returncode == 2


def test_report(cli: Cli, home: HomeBuilder, tmp_path: Path) -> None:
    target = tmp_path / "report.html"
    result = cli("report", "--html", str(target), home=home)
    assert result.returncode == 0, result
    assert result.stdout.strip().startswith(f"wrote {target}: 9 runs of 2 process(es), ")
    assert "<svg" in target.read_text()
    missing = cli("report", "--json", home=home)
    assert missing.returncode == 2 and missing.json["error"]["code"] == "usage"
    assert missing.json["error"]["message"].startswith("Missing option '--html'.")
    bad = cli("report", "--html", str(tmp_path / "nowhere" / "r.html"), "--json", home=home)
    assert bad.returncode == 2 and bad.json["error"]["code"] == "usage"


def test_check_reports_a_bad_settings_file_with_lines(cli: Cli, home: HomeBuilder) -> None:
    home.write("tiers/gaps.yaml", "abandoned_after:\n  tier2: -1\nslow_process:\n  median: 2\n")
    result = cli("check", home=home)
    assert result.returncode == 1
    assert "tiers/gaps.yaml:2: /abandoned_after/tier2: Input should be greater than 0 (got -1)." in result.stdout
    assert "tiers/gaps.yaml:4: unknown key 'median' at /slow_process. Remove it or check its spelling " \
           "(docs/metrics.md lists the settings)." in result.stdout
    broken = cli("metrics", "--json", home=home)
    assert broken.returncode == 1 and broken.json["error"]["code"] == "definition_invalid"
    home.write("tiers/gaps.yaml", "gate_failure: [\n")
    assert "tiers/gaps.yaml:2: YAML syntax error" in cli("check", home=home).stdout


def test_the_platform_settings_file_is_valid_and_holds_the_defaults() -> None:
    from support import REPO
    from tiergate.metrics.settings import MetricsSettings, load_settings

    assert load_settings(REPO) == MetricsSettings()
