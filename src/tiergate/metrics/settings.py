"""Thresholds for metrics and gaps, declared once: ``tiers/gaps.yaml`` overrides the defaults here.

    settings = load_settings(home_root)          # defaults if the file does not exist
    settings.gate_failure.first_attempt_failure_share

Every key is optional; a key the file leaves out keeps its default. ``tiergate check`` reports
a bad file with its line (``settings_problems``); ``tiergate metrics`` and ``tiergate gaps``
refuse to run on one. The defaults and their meaning are listed in docs/metrics.md.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from tiergate.definitions.problems import Problem, ProblemList
from tiergate.definitions.yamlfile import load_yaml
from tiergate.errors import DefinitionError

SETTINGS_FILE = "tiers/gaps.yaml"


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class AbandonedAfter(_Frozen):
    """An open run is abandoned once it is older than this many times its process's expected_minutes."""

    tier1: float = Field(default=3.0, gt=0, description="Factor for Tier 1 runs (they wait for people and timers).")
    tier2: float = Field(default=3.0, gt=0, description="Factor for Tier 2 runs.")
    tier3: float = Field(default=1.0, gt=0, description="Factor for Tier 3 runs: open past expected_minutes is abandoned.")

    def factor(self, tier: int) -> float:
        return float(getattr(self, f"tier{tier}", self.tier3))


class GateFailureGap(_Frozen):
    first_attempt_failure_share: float = Field(default=0.2, ge=0, le=1, description=(
        "A gap when more than this share of agents' first attempts at a step fail its gate."))
    min_first_attempts: int = Field(default=10, ge=1, description="Only steps with at least this many first attempts.")


class FrequentSkipGap(_Frozen):
    skip_share: float = Field(default=0.3, ge=0, le=1, description=(
        "A gap when agents and people skip more than this share of the times a step became ready."))
    min_ready: int = Field(default=10, ge=1, description="Only steps that became ready at least this many times.")


class RefusalsGap(_Frozen):
    refusals_per_ready: float = Field(default=0.2, ge=0, description=(
        "A gap when a step is refused more than this many times per time it became ready."))
    min_refusals: int = Field(default=5, ge=1, description="Only steps refused at least this many times.")


class TimerEscalationGap(_Frozen):
    escalations_per_ready: float = Field(default=0.1, ge=0, description=(
        "A gap when a step escalates more than this many times per time it became ready."))
    min_escalations: int = Field(default=3, ge=1, description="Only steps that escalated at least this many times.")


class SlowProcessGap(_Frozen):
    median_over_expected: float = Field(default=1.5, gt=0, description=(
        "A gap when a process's median time to completion is more than this many times its expected_minutes."))
    min_completed: int = Field(default=10, ge=1, description="Only processes with at least this many completed runs.")


class AbandonedRunsGap(_Frozen):
    abandoned_share: float = Field(default=0.1, ge=0, le=1, description=(
        "A gap when more than this share of a process's settled runs were abandoned."))
    min_abandoned: int = Field(default=3, ge=1, description="Only processes with at least this many abandoned runs.")


class DirectDoorGap(_Frozen):
    min_steps: int = Field(default=1, ge=1, description=(
        "A gap when a step was done this many times through the direct door once a server is in use."))


class MetricsSettings(_Frozen):
    """``tiers/gaps.yaml``: every threshold of metrics and gap detection."""

    abandoned_after: AbandonedAfter = AbandonedAfter()
    gate_failure: GateFailureGap = GateFailureGap()
    frequent_skip: FrequentSkipGap = FrequentSkipGap()
    refusals: RefusalsGap = RefusalsGap()
    timer_escalation: TimerEscalationGap = TimerEscalationGap()
    slow_process: SlowProcessGap = SlowProcessGap()
    abandoned_runs: AbandonedRunsGap = AbandonedRunsGap()
    direct_door: DirectDoorGap = DirectDoorGap()


def read_settings(path: Path, shown: str) -> tuple[MetricsSettings | None, list[Problem]]:
    """The settings in ``path`` (defaults if it does not exist), or None and the problems found."""
    if not path.is_file():
        return MetricsSettings(), []
    try:
        document = load_yaml(path)
    except DefinitionError as exc:
        line = exc.details.get("line", 1)
        return None, [Problem(shown, line, f"YAML syntax error: {exc.details.get('problem', exc.message)}. "
                              "Fix the YAML at this line.")]
    found = ProblemList(shown, document)
    data: Any = document.data if document.data is not None else {}
    if not isinstance(data, dict):
        found.add("", f"{shown} must be a mapping of settings (see docs/metrics.md), not {type(data).__name__}.")
        return None, list(found)
    try:
        return MetricsSettings.model_validate(data), []
    except ValidationError as exc:
        found.add_validation_error(exc, data)
        return None, [Problem(p.path, p.line, p.message.replace("`tiergate schema checklist` lists the keys",
                                                                "docs/metrics.md lists the settings"),
                              p.severity, p.pointer) for p in found]


def settings_problems(home_root: Path, display: Any) -> list[Problem]:
    """What `tiergate check` reports about ``tiers/gaps.yaml``."""
    path = home_root / SETTINGS_FILE
    return read_settings(path, display(path))[1]


def load_settings(home_root: Path) -> MetricsSettings:
    """The home's settings; a broken file is an error naming each problem's line.

    Parsed once per version of the file (its size and modification time): YAML parsing costs
    more than a metrics answer read from the log summary.
    """
    path = home_root / SETTINGS_FILE
    try:
        stat = path.stat()
        version: tuple[int, int] | None = (stat.st_mtime_ns, stat.st_size)
    except OSError:
        version = None
    return _load_settings(path, version)


@lru_cache(maxsize=16)
def _load_settings(path: Path, version: tuple[int, int] | None) -> MetricsSettings:
    settings, problems = read_settings(path, SETTINGS_FILE)
    if settings is None:
        lines = "\n".join(f"  {p}" for p in problems)
        raise DefinitionError(f"{SETTINGS_FILE} has problems:\n{lines}\nFix them (docs/metrics.md lists the "
                              "settings), then run `tiergate check`.",
                              details={"problems": [p.to_dict() for p in problems]})
    return settings
