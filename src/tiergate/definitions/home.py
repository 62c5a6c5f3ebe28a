"""The home folder: where definitions live, found by folder convention.

    <home>/tiers/catalog.yaml        every process and its risk facts
    <home>/tiers/roles.yaml          roles and their members
    <home>/tiers/policy.yaml         who may change which files, and whose approval a change needs
    <home>/tiers/guidance/           guidance wrappers, one per tier
    <home>/tiers/conventions/        Tier 3 conventions, <id>.md.j2
    <home>/checklists/<id>.yaml      Tier 2 checklists (+ schemas/)
    <home>/processes/<id>.bpmn       Tier 1 processes (+ schemas/)
    <home>/decisions/<id>.dmn        DMN decisions (+ tests/)
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from tiergate.actors import canonical_actor
from tiergate.definitions.checklists import ChecklistDefinition, load_checklist_file
from tiergate.definitions.conventions import ConventionsDefinition, load_conventions
from tiergate.definitions.models import Catalog, CatalogEntry, Roles
from tiergate.definitions.problems import Problem, ProblemList
from tiergate.definitions.yamlfile import load_yaml
from tiergate.errors import DefinitionError, NotFoundError, TiergateError

if TYPE_CHECKING:
    from tiergate.bpmn.definition import BpmnDefinition
    from tiergate.definitions.decisions import Decision
    from tiergate.policy import Policy
from tiergate.guidance.render import check_overrides


class Home:
    def __init__(self, root: Path):
        self.root = root.resolve()

    @property
    def catalog_path(self) -> Path:
        return self.root / "tiers" / "catalog.yaml"

    @property
    def roles_path(self) -> Path:
        return self.root / "tiers" / "roles.yaml"

    @property
    def checklists_dir(self) -> Path:
        return self.root / "checklists"

    @property
    def processes_dir(self) -> Path:
        return self.root / "processes"

    @property
    def decisions_dir(self) -> Path:
        return self.root / "decisions"

    @property
    def conventions_dir(self) -> Path:
        return self.root / "tiers" / "conventions"

    @property
    def guidance_dir(self) -> Path:
        return self.root / "tiers" / "guidance"

    def display(self, path: Path) -> str:
        try:
            return path.resolve().relative_to(self.root).as_posix()
        except ValueError:
            return str(path)

    def checklist_files(self) -> list[Path]:
        if not self.checklists_dir.is_dir():
            return []
        return sorted(p for p in self.checklists_dir.iterdir() if p.suffix in (".yaml", ".yml") and p.is_file())

    def process_files(self) -> list[Path]:
        if not self.processes_dir.is_dir():
            return []
        return sorted(p for p in self.processes_dir.iterdir() if p.suffix == ".bpmn" and p.is_file())

    def definition_files(self, process_id: str) -> list[Path]:
        """Every file that defines ``process_id`` in some tier folder."""
        candidates = [self.checklists_dir / f"{process_id}.yaml", self.checklists_dir / f"{process_id}.yml",
                      self.processes_dir / f"{process_id}.bpmn", self.conventions_dir / f"{process_id}.md.j2"]
        return [p for p in candidates if p.is_file()]


@dataclass
class Definitions:
    """Everything loaded from one home, plus the problems found on the way."""

    home: Home
    catalog: Catalog | None = None
    roles: Roles | None = None
    policy: "Policy | None" = None
    checklists: dict[str, ChecklistDefinition] = field(default_factory=dict)
    processes: dict[str, "BpmnDefinition"] = field(default_factory=dict)
    conventions: dict[str, ConventionsDefinition] = field(default_factory=dict)
    decisions: dict[str, Decision] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == "error"]

    def problems_in(self, display_path: str) -> list[Problem]:
        return [p for p in self.errors if p.path == display_path]

    def require_catalog(self) -> Catalog:
        if self.catalog is None:
            raise DefinitionError(self._broken_message(self.home.display(self.home.catalog_path), "the catalog"),
                                  details={"problems": [p.to_dict() for p in self.errors]})
        return self.catalog

    def checklist(self, process_id: str) -> ChecklistDefinition:
        if process_id in self.checklists:
            return self.checklists[process_id]
        for path in self.home.definition_files(process_id):
            shown = self.home.display(path)
            if self.problems_in(shown):
                raise DefinitionError(self._broken_message(shown, f"checklist '{process_id}'"),
                                      details={"problems": [p.to_dict() for p in self.problems_in(shown)], "see": "check"})
        raise NotFoundError(f"no checklist '{process_id}' in {self.home.display(self.home.checklists_dir)}/. "
                            "It is not a process of this home.", details={"process": process_id, "see": "catalog"})

    def conventions_definition(self, process_id: str) -> ConventionsDefinition:
        if process_id in self.conventions:
            return self.conventions[process_id]
        shown = self.home.display(self.home.conventions_dir / f"{process_id}.md.j2")
        if self.problems_in(shown):
            raise DefinitionError(self._broken_message(shown, f"the conventions of '{process_id}'"),
                                  details={"problems": [p.to_dict() for p in self.problems_in(shown)], "see": "check"})
        raise NotFoundError(f"no conventions '{process_id}' in tiers/conventions/ (expected {shown}). "
                            "It is not a process of this home.", details={"process": process_id, "see": "catalog"})

    def process(self, process_id: str) -> "BpmnDefinition":
        """The Tier 1 definition ``processes/<id>.bpmn`` (tiergate.bpmn)."""
        if process_id in self.processes:
            return self.processes[process_id]
        shown = self.home.display(self.home.processes_dir / f"{process_id}.bpmn")
        if self.problems_in(shown):
            raise DefinitionError(self._broken_message(shown, f"process '{process_id}'"),
                                  details={"problems": [p.to_dict() for p in self.problems_in(shown)], "see": "check"})
        raise NotFoundError(f"no Tier 1 process '{process_id}' (expected {shown}). "
                            "It is not a process of this home.", details={"process": process_id, "see": "catalog"})

    def _broken_message(self, shown: str, what: str) -> str:
        lines = "\n".join(f"  {p}" for p in self.problems_in(shown)) or f"  {shown}: missing"
        return f"{what} cannot be used until its problems are fixed:\n{lines}"


def _load_model(path: Path, home: Home, model: type, problems: list[Problem], what: str):  # type: ignore[no-untyped-def]
    shown = home.display(path)
    if not path.is_file():
        problems.append(Problem(shown, 1, f"{what} is missing. Create {shown}."))
        return None
    try:
        document = load_yaml(path)
    except DefinitionError as exc:
        problems.append(Problem(shown, exc.details.get("line", 1),
                                (f"YAML syntax error: {exc.details.get('problem', exc.message)}. Fix the YAML at this line."
                                 if exc.code == "yaml_syntax" else exc.message.split(": ", 1)[-1])))
        return None
    found = ProblemList(shown, document)
    try:
        value = model.model_validate(document.data if document.data is not None else {})
    except ValidationError as exc:
        found.add_validation_error(exc, document.data)
        problems.extend(found)
        return None
    return value, found


def _check_member_spellings(found: ProblemList) -> None:
    """Two spellings of one actor in tiers/roles.yaml (``human:Alice``, ``human:alice``) are refused:
    members are compared in their canonical form (``tiergate.actors.canonical_actor``), so each
    person or agent must be written one way."""
    data = found.document.data if found.document is not None else None
    roles = data.get("roles") if isinstance(data, dict) else None
    if not isinstance(roles, dict):
        return
    first: dict[str, tuple[str, str]] = {}
    for role, body in roles.items():
        members = body.get("members") if isinstance(body, dict) else None
        for index, member in enumerate(members if isinstance(members, list) else []):
            try:
                canonical = canonical_actor(str(member))
            except TiergateError:
                continue  # reported by the model
            where = f"/roles/{role}/members/{index}"
            seen = first.setdefault(canonical, (str(member), where))
            if seen[0] != str(member):
                found.add(where, f"'{member}' and '{seen[0]}' (at {seen[1]}) are the same actor, {canonical}: actor "
                          "ids are compared case-folded and NFKC-normalised. Write every member one way, "
                          f"as {canonical}.")


TIER_FILES = {1: "processes/{id}.bpmn", 2: "checklists/{id}.yaml", 3: "tiers/conventions/{id}.md.j2"}


def _check_routed_definition(home: Home, decisions: dict[str, Decision], entry: CatalogEntry, index: int,
                             found: ProblemList) -> None:
    """Every tier the router can give a process, for any start data, must have its definition."""
    from tiergate.reach import reachable_tiers
    from tiergate.router import ROUTING_DECISION, Router

    routing = decisions.get(ROUTING_DECISION)
    if routing is None:
        if not home.definition_files(entry.id):
            found.add(f"/processes/{index}", f"'{entry.id}' has no definition yet: expected "
                      f"checklists/{entry.id}.yaml, processes/{entry.id}.bpmn or tiers/conventions/{entry.id}.md.j2. "
                      "This is a warning while Tier 1 and Tier 3 definitions are still arriving; add the file.",
                      severity="warning")
        return
    try:
        Router.route_with(routing, entry, None)
        reached = reachable_tiers(routing, entry)
    except TiergateError as err:
        found.add(f"/processes/{index}", f"'{entry.id}' cannot be routed: {err.message}")
        return
    for tier, reach in sorted(reached.items()):
        expected = TIER_FILES[tier].format(id=entry.id)
        if (home.root / expected).is_file():
            continue
        when = (f"a run whose start data has {json.dumps(reach.data)}" if reach.data else "every run")
        found.add(f"/processes/{index}", f"'{entry.id}' is routed to tier {tier} by rule {reach.rule} of "
                  f"decisions/tier_routing.dmn for {when}, but {expected} does not exist, so such a run can never "
                  "start. Add the file, or change the rule so that it cannot send this process there.")


#: Facts of a process that the catalog and a checklist may both state; each must be said once.
SHARED_FACTS = ("title", "owner", "expected_minutes")


def _one_source(definition: ChecklistDefinition, catalog: Catalog, catalog_lines: ProblemList,
                checklist_lines: ProblemList, problems: list[Problem]) -> ChecklistDefinition:
    """Check that the checklist and the catalog do not disagree on a shared fact; fill what it leaves out."""
    checklist = definition.checklist
    index, entry = next((i, e) for i, e in enumerate(catalog.processes) if e.id == checklist.id)
    missing: dict[str, Any] = {}
    for fact in SHARED_FACTS:
        here, there = getattr(checklist, fact), getattr(entry, fact)
        if here is None:
            missing[fact] = there
            continue
        doc = catalog_lines.document
        catalog_at = f"{catalog_lines.display_path}:{doc.line_of(f'/processes/{index}/{fact}') if doc else 1}"
        if here != there:
            checklist_lines_problem = (f"{fact} is {here!r} here but {there!r} in the catalog ({catalog_at}). Say it "
                                       f"once: remove `{fact}` from this checklist (the catalog's is used), or make "
                                       "the two agree.")
            problems.append(Problem(checklist_lines.display_path, _line(checklist_lines, f"/{fact}"),
                                    checklist_lines_problem, "error", f"/{fact}"))
        else:
            problems.append(Problem(checklist_lines.display_path, _line(checklist_lines, f"/{fact}"),
                                    f"{fact} is also said in the catalog ({catalog_at}). Say it once: remove it "
                                    "from this checklist; the catalog's is used.", "warning", f"/{fact}"))
    if not missing:
        return definition
    return replace(definition, checklist=checklist.model_copy(update=missing))


def _line(found: ProblemList, ptr: str) -> int:
    return found.document.line_of(ptr) if found.document is not None else 1


def _roles(home: Home, problems: list[Problem]) -> Roles | None:
    loaded = _load_model(home.roles_path, home, Roles, problems, "tiers/roles.yaml")
    if not loaded:
        return None
    roles, found_in_roles = loaded
    _check_member_spellings(found_in_roles)
    problems.extend(found_in_roles)
    return None if found_in_roles.has_errors else roles


def load_roles(home: Home) -> Roles | None:
    """``tiers/roles.yaml`` alone, as ``load_definitions`` reads it (None if it has problems):
    what a step's check needs, without parsing every process and decision of the home."""
    return _roles(home, [])


def load_definitions(home: Home) -> Definitions:
    """Load and validate every definition in ``home``. Never raises for a bad file: it becomes a problem."""
    defs = Definitions(home=home)
    from tiergate.definitions.decisions import load_decisions  # DMN loads only when definitions do

    defs.decisions, found_in_decisions = load_decisions(home.decisions_dir, home.display)
    defs.problems.extend(found_in_decisions)
    defs.roles = _roles(home, defs.problems)
    from tiergate.policy import load_policy

    defs.policy, found_in_policy = load_policy(home.root, home.display, defs.roles)
    defs.problems.extend(found_in_policy)
    loaded = _load_model(home.catalog_path, home, Catalog, defs.problems, "the catalog")
    catalog_lines: ProblemList | None = None
    if loaded:
        catalog, found = loaded
        catalog_lines = found
        seen: set[str] = set()
        for index, entry in enumerate(catalog.processes):
            if entry.id in seen:
                found.add(f"/processes/{index}/id", f"process id '{entry.id}' is listed twice in the catalog.")
            seen.add(entry.id)
            if defs.roles is not None and entry.owner not in defs.roles.roles:
                found.add(f"/processes/{index}/owner", f"owner '{entry.owner}' of '{entry.id}' is not a role "
                          "in tiers/roles.yaml. Add the role or fix the owner.")
        if not found.has_errors:
            defs.catalog = catalog
        # A process routed where it has no definition is an error of that process's runs, not of
        # the catalog: the other processes stay usable.
        for index, entry in enumerate(catalog.processes):
            _check_routed_definition(home, defs.decisions, entry, index, found)
        defs.problems.extend(found)

    for path in home.checklist_files():
        shown = home.display(path)
        definition, found = load_checklist_file(path, shown, defs.roles, defs.decisions)
        defs.problems.extend(found)
        if definition is None:
            continue
        process_id = definition.checklist.id
        if defs.catalog is not None and defs.catalog.get(process_id) is None:
            defs.problems.append(Problem(shown, 1, f"checklist '{process_id}' is not in tiers/catalog.yaml. "
                                         "Add an entry for it there (id, title, area, owner, expected_minutes, facts)."))
            continue
        if defs.catalog is not None and catalog_lines is not None:
            definition = _one_source(definition, defs.catalog, catalog_lines, found, defs.problems)
        defs.checklists[process_id] = definition
    if home.process_files():
        from tiergate.bpmn.definition import load_process_file

        for path in home.process_files():
            shown = home.display(path)
            process, found_in_process = load_process_file(path, shown, defs.roles, defs.decisions)
            defs.problems.extend(found_in_process)
            if process is None:
                continue
            if defs.catalog is not None and defs.catalog.get(process.process_id) is None:
                defs.problems.append(Problem(shown, 1, f"process '{process.process_id}' is not in tiers/catalog.yaml. "
                                             "Add an entry for it there (id, title, area, owner, expected_minutes, "
                                             "facts)."))
                continue
            defs.processes[process.process_id] = process
    defs.conventions, found_in_conventions = load_conventions(home.conventions_dir, home.display, defs.catalog)
    defs.problems.extend(found_in_conventions)
    defs.problems.extend(check_overrides(home.guidance_dir, home.display))
    from tiergate.metrics.settings import settings_problems  # thresholds of metrics and gaps

    defs.problems.extend(settings_problems(home.root, home.display))
    return defs
