"""Definition types: the catalog, roles and Tier 2 checklists.

These are frozen pydantic models with ``extra="forbid"`` and no I/O. Reading files and
reporting problems with their lines is the loaders' job (``tiergate.definitions.home`` and the
modules it calls).
The JSON Schema of the checklist format shipped in ``tiergate/schemas/`` is generated from
``Checklist`` (``tiergate schema checklist``), so the format has one source of truth.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints

from tiergate.actors import canonical_actor
from tiergate.errors import UsageError

Slug = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9_-]*$", max_length=64)]
ActorKind = Literal["agent", "human"]


def _canonical_member(text: str) -> str:
    """Role members are kept in their canonical spelling (``tiergate.actors.canonical_actor``)."""
    try:
        value = canonical_actor(text)
    except UsageError as err:
        raise ValueError(err.message) from None
    if value.startswith("system:"):
        raise ValueError("the engine (system) cannot be a role member; use agent:NAME or human:NAME")
    return value


ActorRef = Annotated[str, AfterValidator(_canonical_member)]


class Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class RiskFacts(Frozen):
    """What the tier router reads about a process (``decisions/tier_routing.dmn``)."""

    compliance_critical: bool = Field(description="Regulatory or pay-compliance consequences if done wrong.")
    touches_live_systems: bool = Field(description="Changes live client or production systems.")
    client_data: bool = Field(description="Reads or writes client data.")
    structured: bool = Field(description="The work follows a repeatable sequence of steps.")
    human_approval: bool = Field(False, description="Policy requires a named person to approve.")
    reversible: bool = Field(True, description="A mistake can be undone cheaply.")


class CatalogEntry(Frozen):
    id: Slug
    title: str
    area: str
    owner: str = Field(description="A role from tiers/roles.yaml that owns the process definition.")
    expected_minutes: int = Field(gt=0)
    description: str = ""
    facts: RiskFacts


class Catalog(Frozen):
    processes: list[CatalogEntry]

    def get(self, process_id: str) -> CatalogEntry | None:
        return next((p for p in self.processes if p.id == process_id), None)


class Role(Frozen):
    description: str = ""
    members: list[ActorRef] = Field(default_factory=list)


class Roles(Frozen):
    roles: dict[Slug, Role]


class SendBack(Frozen):
    """A review's "no": evidence that passes ``when`` sends the run back to the steps in ``to``."""

    when: dict[str, Any] = Field(
        description="A JSON Schema (draft 2020-12). Evidence that passes the step's gate and also this schema "
        "does not finish the step: it reopens the steps in `to`, with their earlier evidence shown.",
    )
    to: list[Slug] = Field(
        min_length=1,
        description="Earlier steps (ones this step waits for, directly or through others) to reopen. Every step "
        "after them, this one included, reopens too.",
    )


class Step(Frozen):
    """One step of a checklist. A step is ready once every step in ``after`` is done or skipped."""

    id: Slug = Field(description="Unique within the checklist; used in `tiergate complete RUN STEP`.")
    title: str
    instructions: str = Field(
        "",
        description="What to do, as a Jinja template rendered in a sandbox with `data` (start data plus "
        "earlier evidence), `steps` and `run`.",
    )
    actors: list[ActorKind] = Field(
        default_factory=lambda: ["agent", "human"],
        min_length=1,
        description="Which kinds of actor may complete the step.",
    )
    roles: list[Slug] = Field(
        default_factory=list,
        description="If given, the actor must be a member of one of these roles (tiers/roles.yaml).",
    )
    done_when: dict[str, Any] | None = Field(
        None,
        description="The evidence gate: a JSON Schema (draft 2020-12), inline or {$ref: schemas/FILE.json}. "
        "Required unless the step is a `decide` step.",
    )
    after: list[Slug] | None = Field(
        None,
        description="Steps this one waits for. Omitted: the previous step. `[]`: ready from the start.",
    )
    optional: bool = Field(False, description="The step may be skipped with a reason.")
    distinct_from: Slug | None = Field(
        None, description="Four eyes: the actor must differ from whoever completed that step."
    )
    decide: str | None = Field(
        None, description="Evaluate this DMN decision on the run's data when the step becomes ready."
    )
    may_overwrite: list[str] = Field(
        default_factory=list,
        description="Keys of the run's data this step's evidence may replace. Any other clash is refused.",
    )
    sends_back: SendBack | None = Field(
        None,
        description="Send-back: evidence matching `when` reopens the earlier steps in `to` instead of finishing "
        "this step (a review that says no). Logged as `sent_back`, counted as rework.",
    )


class Checklist(Frozen):
    """A Tier 2 checklist: ``checklists/<id>.yaml``."""

    id: Slug = Field(description="The process id; must match the catalog and the file name.")
    title: str | None = Field(None, description="Said once: here or in tiers/catalog.yaml (taken from there if left out).")
    owner: str | None = Field(None, description="A role from tiers/roles.yaml. Said once: here or in the catalog.")
    expected_minutes: int | None = Field(None, gt=0, description="Said once: here or in the catalog.")
    description: str = ""
    inputs: dict[str, Any] = Field(
        default_factory=lambda: {"type": "object"},
        description="JSON Schema (draft 2020-12) the start data must pass.",
    )
    steps: list[Step] = Field(min_length=1)

    def step(self, step_id: str) -> Step | None:
        return next((s for s in self.steps if s.id == step_id), None)

    def successors(self, step_ids: list[str]) -> list[str]:
        """``step_ids`` and every step that waits for one of them, directly or through others, in file order."""
        found = set(step_ids)
        changed = True
        while changed:
            changed = False
            for step in self.steps:
                if step.id not in found and any(p in found for p in self.predecessors(step.id)):
                    found.add(step.id)
                    changed = True
        return [s.id for s in self.steps if s.id in found]

    def predecessors(self, step_id: str) -> list[str]:
        """The ``after`` list with the default (the previous step) applied."""
        ids = [s.id for s in self.steps]
        index = ids.index(step_id)
        step = self.steps[index]
        if step.after is not None:
            return list(step.after)
        return [ids[index - 1]] if index > 0 else []


def checklist_json_schema() -> dict[str, Any]:
    """The JSON Schema of the checklist format, for editors and `tiergate schema checklist`."""
    schema = Checklist.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["$id"] = "https://tiergate.dev/schemas/checklist.schema.json"
    return schema
