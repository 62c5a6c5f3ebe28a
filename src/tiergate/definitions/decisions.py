"""The home's DMN decisions (``decisions/<id>.dmn``), loaded with tiergate's own DMN engine.

Each file holds one decision the platform calls by id: the file ``support_triage.dmn`` must
contain a decision with id ``support_triage`` (it may hold required decisions too). Its test
cases live in ``decisions/tests/<id>.yaml``.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

from tiergate.definitions.problems import Problem
from tiergate.dmn import DMNModel, load_dmn
from tiergate.errors import EvaluationError, TiergateError
from tiergate.jsonutil import NoJSONForm, to_jsonable


@dataclass(eq=False)
class Decision:
    """One decision file, compiled."""

    id: str
    xml: bytes
    source: str = ""
    path: Path | None = None
    """Where the file was read from, so load errors name it; None for a pinned snapshot."""
    imports: dict[str, bytes] | None = None
    """The pinned files its ``<import>``s may name (file name in decisions/ -> XML); None: read them
    beside ``path``."""

    @cached_property
    def model(self) -> DMNModel:
        if self.imports is not None:
            return load_dmn(self.xml, label=self.source or None, imports=self.imports, home=True)
        if self.path is not None and self.path.read_bytes() == self.xml:
            return load_dmn(self.path, label=self.source or None, home=True)
        return load_dmn(self.xml)

    @property
    def imported_files(self) -> dict[str, str]:
        """Every DMN file this decision imports (transitively), by file name: pinned with it."""
        return {name: data.decode("utf-8") for name, data in sorted(self.model.imported_files.items())}

    @cached_property
    def _service(self):
        """The decision service this file's id names (None: the id names a decision)."""
        return next((s for s in self.model.services if s.id == self.id), None)

    @cached_property
    def output_names(self) -> list[str]:
        if self._service is not None and len(self._service.output_decisions) > 1:
            return list(self._service.output_decisions)
        info = self.model.decision(self._service.output_decisions[0] if self._service else self.id)
        if info.table is not None:
            return [o.name or o.label or f"output{n}" for n, o in enumerate(info.table.outputs, 1)]
        return [info.name]

    @cached_property
    def input_names(self) -> list[str]:
        """The names the decision reads: its inputData and the implicit inputs of modeler-written tables."""
        return self.model.input_names(self.id)

    def rule_ids(self) -> list[str]:
        """Every rule of every table this decision evaluates (itself and what it requires)."""
        seen: list[str] = []
        roots = list(self._service.output_decisions) if self._service else [self.id]
        wanted, required = set(roots), set().union(*(self._required_names(r) for r in roots))
        for info in self.model.decisions:
            if info.id in wanted or info.name in wanted or info.name in required:
                if info.table is not None:
                    seen.extend(rule.id for rule in info.table.rules)
        return seen

    def _required_names(self, root: str) -> set[str]:
        names: set[str] = set()
        stack = [self.model.decision(root)]
        while stack:
            info = stack.pop()
            for name in info.required_decisions:
                if name not in names:
                    names.add(name)
                    stack.append(self.model.decision(name))
        return names

    def evaluate(self, inputs: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
        """Evaluate on ``inputs``; returns (outputs by name as plain JSON values, matched rule ids).

        A table that matches no rule is an error here: a decision the platform relies on must
        always answer.
        """
        given = {name: inputs.get(name) for name in self.input_names}
        # strict: an input of the wrong type is an error, not a silent null (missing ones are null).
        result = self.model.evaluate(self.id, given, strict=True)
        value = result.value
        if value is None:
            raise EvaluationError(f"decision '{self.id}' matched no rule for inputs {to_jsonable(given)}. "
                                  "Add a rule (or a catch-all last rule) to the table.",
                                  details={"decision": self.id, "inputs": to_jsonable(given)})
        if not isinstance(value, dict):
            value = {self.output_names[0]: value}
        try:
            return to_jsonable(value), list(result.matched_rules)
        except TypeError as err:
            what = err.what if isinstance(err, NoJSONForm) else str(err)
            raise EvaluationError(f"decision '{self.id}' answered a value with no JSON form ({what}), so it cannot "
                                  "be logged or passed on. Make the decision answer numbers, strings, booleans, "
                                  "dates, durations, ranges, lists or contexts: call the function instead of "
                                  "returning it.", details={"decision": self.id, "value": what}) from None


def pin_decisions(decisions: dict[str, Decision], ids: Any) -> tuple[dict[str, str], dict[str, str]]:
    """The XML of decisions ``ids`` and of every file they import, as a definition snapshot pins them."""
    used = {decision_id: decisions[decision_id].xml.decode("utf-8") for decision_id in ids}
    imported: dict[str, str] = {}
    for decision_id in used:
        imported.update(decisions[decision_id].imported_files)
    return used, imported


def pinned_decision(decision_id: str, xml: str, imported: dict[str, str]) -> Decision:
    """A decision rebuilt from a snapshot: its imports come from the pinned files, never from disk."""
    return Decision(id=decision_id, xml=xml.encode("utf-8"), source=f"decisions/{decision_id}.dmn",
                    imports={name: text.encode("utf-8") for name, text in imported.items()})


def load_decisions(folder: Path, display: Any) -> tuple[dict[str, Decision], list[Problem]]:
    """Load every ``*.dmn`` in ``folder``. ``display(path)`` gives the path shown in problems.

    A file another one imports is a library: it needs no decision named by its file, nor test
    cases of its own (its importers' cases test it)."""
    decisions: dict[str, Decision] = {}
    problems: list[Problem] = []
    if not folder.is_dir():
        return decisions, problems
    loaded: list[tuple[Path, str, Decision, set[str]]] = []
    imported: set[str] = set()
    for path in sorted(folder.glob("*.dmn")):
        shown = display(path)
        decision = Decision(id=path.stem, xml=path.read_bytes(), source=shown, path=path)
        try:
            ids = {info.id for info in decision.model.decisions} | {s.id for s in decision.model.services}
        except TiergateError as err:
            line = err.details.get("line") or 1
            problems.append(Problem(shown, int(line), err.message))
            continue
        problems.extend(Problem(shown, line, message) for line, message in decision.model.incomplete)
        imported.update(decision.model.imported_files)
        loaded.append((path, shown, decision, ids))
    for path, shown, decision, ids in loaded:
        library = path.name in imported
        if decision.id not in ids:
            if not library:
                problems.append(Problem(shown, 1, f"{path.name} has no decision with id '{decision.id}' (it has "
                                        f"{', '.join(sorted(ids)) or 'none'}). The file name must be the id of the "
                                        "decision the platform calls."))
            continue
        if not library and not (folder / "tests" / f"{decision.id}.yaml").is_file():
            problems.append(Problem(shown, 1, f"decision '{decision.id}' has no test cases: add "
                                    f"{display(folder / 'tests' / (decision.id + '.yaml'))} and run "
                                    "`tiergate decisions test`."))
        decisions[decision.id] = decision
    return decisions, problems
