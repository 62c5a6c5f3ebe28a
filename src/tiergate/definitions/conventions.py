"""Tier 3 conventions: ``tiers/conventions/<id>.md.j2``, one Jinja template per process.

A conventions template is prompt guidance for low-stakes work (how to cite, what never to
state, the answer format). It is rendered when a run starts, with the same names as step
instructions: ``data`` (the start data), ``run.id``, ``run.process`` and ``steps.work``. Tier 3
has no inputs schema, so every ``data`` key is optional and must be guarded
(``{% if data.question is defined %}``); ``tiergate check`` renders each template with empty
start data to catch an unguarded name, with its line.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Callable

from pydantic import BaseModel, ConfigDict, Field

from tiergate.definitions.models import Catalog
from tiergate.definitions.problems import Problem
from tiergate.jsonutil import content_hash
from tiergate.runview import WORK_STEP

SUFFIX = ".md.j2"
_SLUG = re.compile(r"^[a-z0-9][a-z0-9_-]*$")


class ConventionsDefinition(BaseModel):
    """A process's conventions with the catalog facts a run needs; pinned by ``version``."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    process_id: str
    title: str
    expected_minutes: int = Field(gt=0)
    description: str = ""
    template: str = Field(description="The Jinja source of tiers/conventions/<id>.md.j2.")
    source: str = Field(default="", description="Where the template was read from (not part of the version).")

    @property
    def version(self) -> str:
        return content_hash(self.snapshot())

    def snapshot(self) -> dict[str, Any]:
        return {"kind": "conventions", **self.model_dump(mode="json", exclude={"source"})}

    @classmethod
    def from_snapshot(cls, body: dict[str, Any]) -> "ConventionsDefinition":
        fields = {k: v for k, v in body.items() if k != "kind"}
        return cls(**fields, source=f"tiers/conventions/{fields['process_id']}{SUFFIX}")


def template_context(process_id: str, data: dict[str, Any], run_id: str, *, state: str = "ready",
                     actor: str | None = None, outcome: Any = None) -> dict[str, Any]:
    """What a conventions template sees: the same names as a checklist step's instructions."""
    return {"data": data, "run": {"id": run_id, "process": process_id},
            "steps": {WORK_STEP: {"evidence": outcome, "state": state, "actor": actor}}}


def load_conventions(folder: Path, display: Callable[[Path], str],
                     catalog: Catalog | None) -> tuple[dict[str, ConventionsDefinition], list[Problem]]:
    """Every conventions template in ``folder`` that loads cleanly, and the problems of the others."""
    from tiergate.guidance.render import template_problem  # guidance imports definitions; not the reverse at import

    found: dict[str, ConventionsDefinition] = {}
    problems: list[Problem] = []
    if not folder.is_dir():
        return found, problems
    for path in sorted(folder.iterdir()):
        shown = display(path)
        if not path.is_file() or path.name.lower().startswith("readme"):
            continue
        if not path.name.endswith(SUFFIX):
            problems.append(Problem(shown, 1, f"{path.name} is not used: conventions are named <process id>{SUFFIX}. "
                                    "Rename it or move it out of tiers/conventions/.", severity="warning"))
            continue
        process_id = path.name[:-len(SUFFIX)]
        if not _SLUG.match(process_id) or len(process_id) > 64:
            problems.append(Problem(shown, 1, f"'{process_id}' is not a process id (lower-case letters, digits, "
                                    f"'-' and '_'). Name the file <process id>{SUFFIX}."))
            continue
        try:
            source = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            problems.append(Problem(shown, 1, f"cannot read the conventions: {exc}. Save the file as UTF-8 text."))
            continue
        problem = template_problem(source, shown, template_context(process_id, {}, "000000000000"),
                                   f"conventions of '{process_id}'")
        if problem is not None:
            problems.append(problem)
            continue
        if catalog is None:
            continue  # the catalog's own problems are reported with it
        entry = catalog.get(process_id)
        if entry is None:
            problems.append(Problem(shown, 1, f"conventions '{process_id}' are not in tiers/catalog.yaml. Add an entry "
                                    "for the process there (id, title, area, owner, expected_minutes, facts)."))
            continue
        found[process_id] = ConventionsDefinition(process_id=process_id, title=entry.title,
                                                  expected_minutes=entry.expected_minutes,
                                                  description=entry.description, template=source, source=shown)
    return found, problems
