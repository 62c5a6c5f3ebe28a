"""Loading and validating Tier 2 checklists (``checklists/<id>.yaml``)."""

from __future__ import annotations

import json
import posixpath
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator
from urllib.parse import urldefrag, urljoin

from jsonschema import Draft202012Validator
from jsonschema.protocols import Validator
from jsonschema.exceptions import SchemaError
from pydantic import ValidationError
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from tiergate.definitions.gate_rules import gate_problems, unresolved_refs
from tiergate.definitions.models import Checklist, Roles
from tiergate.definitions.problems import ProblemList
from tiergate.definitions.yamlfile import YamlDocument, load_yaml, parse_yaml, pointer
from tiergate.errors import DefinitionError
from tiergate.gates import gate_validator
from tiergate.jsonutil import content_hash
from tiergate.templating import check_syntax

if TYPE_CHECKING:
    from tiergate.definitions.decisions import Decision

SCHEMA_DIR = "schemas"


@dataclass(eq=False)
class ChecklistDefinition:
    """A checklist with its referenced schema files: everything a run needs, pinned by ``version``."""

    checklist: Checklist
    resources: dict[str, Any] = field(default_factory=dict)
    source: str = ""
    decisions: dict[str, str] = field(default_factory=dict)
    """The DMN XML of every decision its ``decide`` steps use, pinned with the checklist."""
    decision_imports: dict[str, str] = field(default_factory=dict)
    """The DMN files those decisions import (file name in decisions/ -> XML), pinned too."""

    @cached_property
    def version(self) -> str:
        return content_hash(self.snapshot())

    @property
    def title(self) -> str:
        return self.checklist.title or self.checklist.id

    def snapshot(self) -> dict[str, Any]:
        body = {"kind": "checklist", "checklist": self.checklist.model_dump(mode="json"),
                "resources": self.resources, "decisions": self.decisions}
        if self.decision_imports:
            body["decision_imports"] = self.decision_imports
        return body

    @classmethod
    def from_snapshot(cls, body: dict[str, Any]) -> "ChecklistDefinition":
        return cls(checklist=Checklist.model_validate(body["checklist"]), resources=body.get("resources", {}),
                   decisions=body.get("decisions", {}), decision_imports=body.get("decision_imports", {}))

    def decision(self, decision_id: str) -> Decision:
        cache = self.__dict__.setdefault("_decision_cache", {})
        if decision_id not in cache:
            from tiergate.definitions.decisions import pinned_decision  # DMN loads for decide steps only

            cache[decision_id] = pinned_decision(decision_id, self.decisions[decision_id], self.decision_imports)
        return cache[decision_id]

    @cached_property
    def registry(self) -> Registry:
        return Registry().with_resources(
            (uri, Resource.from_contents(schema, default_specification=DRAFT202012))
            for uri, schema in self.resources.items()
        )

    def validator(self, schema: dict[str, Any]) -> Validator:
        return gate_validator(schema, self.registry)


def _refs(node: Any, ptr: str = "") -> Iterator[tuple[str, str]]:
    """Every external ``$ref`` in a schema, with the pointer where it sits."""
    if isinstance(node, dict):
        for key, value in node.items():
            child = f"{ptr}/{key}"
            if key == "$ref" and isinstance(value, str) and not value.startswith("#"):
                yield child, value
            else:
                yield from _refs(value, child)
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from _refs(value, f"{ptr}/{index}")


def _check_schema(schema: Any, ptr: str, problems: ProblemList, what: str) -> bool:
    try:
        Draft202012Validator.check_schema(schema)
    except SchemaError as exc:
        inner = ptr + pointer(list(exc.absolute_path))
        problems.add(inner, f"{what} is not a valid JSON Schema (draft 2020-12) at {inner}: {exc.message}. "
                     "See https://json-schema.org/draft/2020-12 for the keywords.")
        return False
    gate_problems(schema, ptr, problems, what)
    return True


def _load_schema_file(path: Path) -> Any:
    if path.suffix == ".json":
        return json.loads(path.read_text(encoding="utf-8"))
    return parse_yaml(path.read_text(encoding="utf-8"), path).data


def _collect_resources(schema: Any, base_uri: str, ptr: str, folder: Path, resources: dict[str, Any],
                       problems: ProblemList, display_folder: str) -> None:
    before = set(resources)
    _collect_files(schema, base_uri, ptr, folder, resources, problems, display_folder)
    if not base_uri:  # the gate itself: now that its files are loaded, every $ref must resolve
        unresolved_refs(schema, ptr, {uri: resources[uri] for uri in resources if uri not in before},
                        problems, "the gate", registry_resources=resources)


def _inside_home(file: Path, folder: Path) -> bool:
    """Whether ``file``, symlinks followed, stays in the home (the parent of the definitions folder)."""
    try:
        return file.resolve().is_relative_to(folder.parent.resolve())
    except (OSError, RuntimeError):
        return False


def _collect_files(schema: Any, base_uri: str, ptr: str, folder: Path, resources: dict[str, Any],
                   problems: ProblemList, display_folder: str) -> None:
    for ref_ptr, ref in _refs(schema, ptr):
        target, _fragment = urldefrag(urljoin(base_uri, ref))
        if not target:
            continue
        normal = posixpath.normpath(target)
        if not normal.startswith(SCHEMA_DIR + "/") or ".." in normal.split("/") or "://" in target:
            problems.add(ref_ptr, f"$ref '{ref}' must name a file under {display_folder}/{SCHEMA_DIR}/ "
                         f"(write it as '{SCHEMA_DIR}/NAME.json').")
            continue
        if target in resources:
            continue
        file = folder / normal
        if not _inside_home(file, folder):
            problems.add(ref_ptr, f"$ref '{ref}' leads outside the home ({display_folder}/{normal} is a link to a "
                         "file elsewhere), so it is not read. Copy the schema into the home.")
            continue
        if not file.is_file():
            problems.add(ref_ptr, f"$ref '{ref}' points to {display_folder}/{normal}, which does not exist. "
                         "Create the file or fix the reference.")
            continue
        try:
            contents = _load_schema_file(file)
        except (json.JSONDecodeError, DefinitionError) as exc:
            message = exc.message if isinstance(exc, DefinitionError) else str(exc)
            problems.add(ref_ptr, f"$ref '{ref}': {display_folder}/{normal} is not valid JSON/YAML: {message}")
            continue
        if not _check_schema(contents, ref_ptr, problems, f"{display_folder}/{normal} (referenced here)"):
            continue
        resources[target] = contents
        _collect_files(contents, target, ref_ptr, folder, resources, problems, display_folder)


def _check_graph(checklist: Checklist, problems: ProblemList) -> None:
    ids = [s.id for s in checklist.steps]
    seen: set[str] = set()
    for index, step in enumerate(checklist.steps):
        if step.id in seen:
            problems.add(f"/steps/{index}/id", f"step id '{step.id}' is used twice. Step ids must be unique.")
        seen.add(step.id)
    preds: dict[str, list[str]] = {}
    for index, step in enumerate(checklist.steps):
        preds[step.id] = checklist.predecessors(step.id)
        for j, other in enumerate(step.after or []):
            if other not in ids:
                problems.add(f"/steps/{index}/after/{j}", f"step '{step.id}' waits for '{other}', which is not a "
                             f"step of this checklist. Known steps: {', '.join(ids)}.")
            elif other == step.id:
                problems.add(f"/steps/{index}/after/{j}", f"step '{step.id}' waits for itself. Remove it from `after`.")
    # Depth-first search for cycles; report each cycle once, at its first step.
    state: dict[str, int] = {}

    def visit(node: str, trail: list[str]) -> None:
        state[node] = 1
        for nxt in preds.get(node, []):
            if nxt not in preds or nxt == node:
                continue
            if state.get(nxt) == 1:
                cycle = trail[trail.index(nxt):] + [nxt] if nxt in trail else [node, nxt]
                problems.add(f"/steps/{ids.index(nxt)}/after", "steps form a cycle through `after`: "
                             f"{' -> '.join(cycle)}. Break the cycle so some step can become ready.")
            elif state.get(nxt) is None:
                visit(nxt, trail + [nxt])
        state[node] = 2

    for step_id in ids:
        if state.get(step_id) is None:
            visit(step_id, [step_id])

    def ancestors(step_id: str) -> set[str]:
        found: set[str] = set()
        stack = list(preds.get(step_id, []))
        while stack:
            current = stack.pop()
            if current in found or current not in preds:
                continue
            found.add(current)
            stack.extend(preds[current])
        return found

    for index, step in enumerate(checklist.steps):
        if step.sends_back is None:
            continue
        if step.decide is not None:
            problems.add(f"/steps/{index}/sends_back", f"step '{step.id}' is decided by the engine and cannot send "
                         "back. Put sends_back on a step a person or an agent completes.")
        for j, target in enumerate(step.sends_back.to):
            if target not in ids:
                problems.add(f"/steps/{index}/sends_back/to/{j}", f"sends_back names '{target}', which is not a step "
                             f"of this checklist. Known steps: {', '.join(ids)}.")
            elif target not in ancestors(step.id):
                problems.add(f"/steps/{index}/sends_back/to/{j}", f"sends_back can only reopen earlier steps, and "
                             f"'{step.id}' does not wait for '{target}'. Name a step it waits for (see `after`).")
    for index, step in enumerate(checklist.steps):
        if step.distinct_from is None:
            continue
        if step.distinct_from not in ids:
            problems.add(f"/steps/{index}/distinct_from", f"distinct_from names '{step.distinct_from}', which is "
                         "not a step of this checklist.")
        elif step.distinct_from not in ancestors(step.id):
            problems.add(f"/steps/{index}/distinct_from", f"distinct_from '{step.distinct_from}' is not a step "
                         f"that '{step.id}' waits for, so its actor is not known in time. Add it to `after`.")


def _required_keys(schema: Any, resources: dict[str, Any]) -> set[str]:
    """Top-level keys a schema makes required (following $ref into shared files and allOf)."""
    if not isinstance(schema, dict):
        return set()
    keys = set(schema.get("required") or [])
    ref = schema.get("$ref")
    if isinstance(ref, str) and not ref.startswith("#"):
        target, fragment = urldefrag(ref)
        node: Any = resources.get(target)
        for part in [p for p in fragment.split("/") if p]:
            node = node.get(part) if isinstance(node, dict) else None
        keys |= _required_keys(node, resources)
    for sub in schema.get("allOf") or []:
        keys |= _required_keys(sub, resources)
    return keys


def _check_decision_inputs(checklist: Checklist, index: int, decisions: dict[str, Decision],
                           resources: dict[str, Any], problems: ProblemList) -> None:
    """A decide step's decision must only read keys that are sure to be in the run's data by then."""
    step = checklist.steps[index]
    assert step.decide is not None
    decision = decisions[step.decide]
    available = _required_keys(checklist.inputs, resources)
    stack, seen = checklist.predecessors(step.id), set()
    while stack:
        current = stack.pop()
        if current in seen or checklist.step(current) is None:
            continue
        seen.add(current)
        earlier = checklist.step(current)
        assert earlier is not None
        if earlier.optional:
            stack.extend(checklist.predecessors(current))
            continue
        available |= _required_keys(earlier.done_when, resources)
        if earlier.decide is not None and earlier.decide in decisions:
            available |= set(decisions[earlier.decide].output_names)
        stack.extend(checklist.predecessors(current))
    try:
        needed = decision.input_names
    except Exception:  # noqa: BLE001 - the decision's own problems are reported with its file
        return
    missing = [name for name in needed if name not in available]
    if missing:
        problems.add(f"/steps/{index}/decide", f"decision '{decision.id}' reads {', '.join(missing)}, which neither "
                     "the start data nor an earlier required step's gate guarantees. Require "
                     f"{'it' if len(missing) == 1 else 'them'} in `inputs` or in the done_when of a step "
                     f"'{step.id}' waits for.")


def validate_checklist(document: YamlDocument, display_path: str, roles: Roles | None,
                       decisions: dict[str, Decision]) -> tuple[ChecklistDefinition | None, ProblemList]:
    """Validate one parsed checklist file. Returns the definition (None on errors) and its problems.

    ``decisions`` are the home's decisions that loaded without problems.
    """
    problems = ProblemList(display_path, document)
    data = document.data
    if not isinstance(data, dict):
        problems.add("", "a checklist must be a YAML mapping with an id and steps.")
        return None, problems
    try:
        checklist = Checklist.model_validate(data)
    except ValidationError as exc:
        problems.add_validation_error(exc, data)
        return None, problems

    stem = document.path.name.rsplit(".", 1)[0]
    if checklist.id != stem:
        problems.add("/id", f"id '{checklist.id}' does not match the file name '{document.path.name}'. "
                     f"Rename the file to {checklist.id}.yaml or change the id.")
    if roles is not None and checklist.owner is not None and checklist.owner not in roles.roles:
        problems.add("/owner", f"owner '{checklist.owner}' is not a role in tiers/roles.yaml.")
    resources: dict[str, Any] = {}
    used: dict[str, None] = {}
    folder = document.path.parent
    display_folder = posixpath.dirname(display_path) or "."
    if _check_schema(checklist.inputs, "/inputs", problems, "inputs"):
        _collect_resources(checklist.inputs, "", "/inputs", folder, resources, problems, display_folder)
    _check_graph(checklist, problems)
    for index, step in enumerate(checklist.steps):
        base = f"/steps/{index}"
        if step.done_when is None and step.decide is None:
            problems.add(base, f"step '{step.id}' has no done_when gate. Every step needs one: a JSON Schema "
                         "its evidence must pass (or make it a `decide` step).")
        if step.done_when is not None:
            if _check_schema(step.done_when, f"{base}/done_when", problems, f"done_when of step '{step.id}'"):
                _collect_resources(step.done_when, "", f"{base}/done_when", folder, resources, problems,
                                   display_folder)
        if step.sends_back is not None:
            if step.done_when is None:
                problems.add(f"{base}/sends_back", f"step '{step.id}' sends back on evidence that its done_when "
                             "gate lets through, but it has no done_when. Give it a gate that allows the \"no\".")
            if _check_schema(step.sends_back.when, f"{base}/sends_back/when", problems,
                             f"sends_back.when of step '{step.id}'"):
                _collect_resources(step.sends_back.when, "", f"{base}/sends_back/when", folder, resources, problems,
                                   display_folder)
        for j, role in enumerate(step.roles):
            if roles is not None and role not in roles.roles:
                problems.add(f"{base}/roles/{j}", f"role '{role}' is not defined in tiers/roles.yaml. "
                             f"Defined roles: {', '.join(sorted(roles.roles))}.")
        if step.decide is not None:
            if step.decide not in decisions:
                problems.add(f"{base}/decide", f"decision '{step.decide}' does not exist or failed to load "
                             f"(decisions/{step.decide}.dmn). Available decisions: "
                             f"{', '.join(sorted(decisions)) or 'none'}.")
            else:
                _check_decision_inputs(checklist, index, decisions, resources, problems)
                used[step.decide] = None
        if step.instructions:
            error = check_syntax(step.instructions)
            if error is not None:
                line = document.line_of(f"{base}/instructions") + (error[0] if "\n" in step.instructions else 0)
                problems.add(f"{base}/instructions", f"instructions of step '{step.id}': template syntax error: "
                             f"{error[1]}.", line=line)
    if problems.has_errors:
        return None, problems
    from tiergate.definitions.decisions import pin_decisions

    pinned, imported = pin_decisions(decisions, list(used))
    return ChecklistDefinition(checklist=checklist, resources=resources, source=display_path,
                               decisions=pinned, decision_imports=imported), problems


def load_checklist_file(path: Path, display_path: str, roles: Roles | None,
                        decisions: dict[str, Decision]) -> tuple[ChecklistDefinition | None, ProblemList]:
    try:
        document = load_yaml(path)
    except DefinitionError as exc:
        problems = ProblemList(display_path)
        problems.add("", (f"YAML syntax error: {exc.details.get('problem', exc.message)}. Fix the YAML at this line."
                                 if exc.code == "yaml_syntax" else exc.message.split(": ", 1)[-1]),
                     line=exc.details.get("line", 1))
        return None, problems
    return validate_checklist(document, display_path, roles, decisions)
