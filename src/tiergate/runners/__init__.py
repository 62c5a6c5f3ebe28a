"""The three tier runners, built when a run of their tier is first touched.

A Tier 2 command never imports SpiffWorkflow, and a Tier 1 command never imports the checklist
gates it does not use: ``Runners()[tier]`` imports the runner's module on first use.
"""

from __future__ import annotations

import importlib
from typing import Iterator, Mapping

from tiergate.runners.base import Runner

_RUNNER_CLASSES = {1: ("tiergate.runners.bpmn", "BpmnRunner"), 2: ("tiergate.runners.checklist", "ChecklistRunner"),
                   3: ("tiergate.runners.conventions", "ConventionsRunner")}


class Runners(Mapping[int, Runner]):
    """tier -> its runner, one instance per engine, imported and built on first use."""

    def __init__(self) -> None:
        self._built: dict[int, Runner] = {}

    def __getitem__(self, tier: int) -> Runner:
        runner = self._built.get(tier)
        if runner is None:
            if tier not in _RUNNER_CLASSES:
                raise KeyError(tier)
            module, name = _RUNNER_CLASSES[tier]
            runner = self._built[tier] = getattr(importlib.import_module(module), name)()
        return runner

    def __iter__(self) -> Iterator[int]:
        return iter(_RUNNER_CLASSES)

    def __len__(self) -> int:
        return len(_RUNNER_CLASSES)
