"""The typed context every guidance wrapper (``tier1.md.j2``, ``tier2.md.j2``, ``tier3.md.j2``) renders from.

One model for all tiers, so a team can override a wrapper knowing exactly which names exist
(docs/guidance.md documents each field). Everything in it is a *value*: step instructions are
already rendered, run data and evidence are plain JSON, and the wrapper prints them; nothing
from a run is ever compiled as a template.

    context = build_context(run_info, process=entry, resources=definition.resources, channel="mcp",
                            actor=Actor.parse("agent:triage-bot"), roles=definitions.roles)
    context.current           # Tier 1: the one step to do now
    context.ready             # Tier 2: every ready step
    context.conventions       # Tier 3: the rendered conventions
"""

from __future__ import annotations

import json
from typing import Any, Literal, Mapping

from pydantic import BaseModel, ConfigDict, Field

from tiergate.actors import Actor
from tiergate.definitions.models import Roles
from tiergate.guidance.schema import inline_refs
from tiergate.guidance.words import gate_words, who_may
from tiergate.runview import RunInfo, StepView

Channel = Literal["cli", "mcp"]
TIER_NAMES = {1: "BPMN process", 2: "checklist", 3: "conventions"}


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class EvidenceWords(BaseModel):
    """The words for one gate, as they appear in the guidance context (``step.evidence``)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    text: str
    """A first line saying what to submit, then one bullet per field and per condition."""
    required: list[str]
    """Top-level fields that are always required."""
    json_schema: dict[str, Any]
    """The gate with every ``$ref`` inlined: self-contained, validates exactly as the gate does."""


def evidence_words(schema: Mapping[str, Any] | bool | None, resources: Mapping[str, Any] | None = None) -> EvidenceWords:
    """Describe a step's ``done_when`` in words (``words.gate_words``), with the gate made self-contained."""
    text, required = gate_words(schema, resources)
    return EvidenceWords(text=text, required=required,
                         json_schema=inline_refs(schema, resources or {}) if isinstance(schema, dict) else {})


class ProcessView(_Model):
    """The process, from the catalog (``tiers/catalog.yaml``)."""

    id: str
    title: str
    area: str = ""
    owner: str = ""
    expected_minutes: int | None = None
    description: str = ""


class RunView(_Model):
    id: str
    status: str = Field(description="active, completed, cancelled or failed")
    started_by: str
    created_at: str
    ended_at: str | None = None
    definition_version: str


class StepGuide(_Model):
    """One step, with everything an actor needs to do it."""

    id: str
    title: str
    state: str = Field(description="done, ready, locked or skipped")
    optional: bool = False
    instructions: str = Field(default="", description="Rendered instructions (only while the step is ready).")
    evidence: EvidenceWords | None = Field(default=None, description="The gate in words, and as a self-contained schema.")
    who: str = Field(default="", description="Who may do the step, in words.")
    actors: list[str] = Field(default_factory=list)
    roles: list[str] = Field(default_factory=list)
    waits_for: list[str] = Field(default_factory=list)
    distinct_from: str | None = None
    decide: str | None = Field(default=None, description="Set on steps the engine decides itself (a DMN decision).")
    you_may: bool | None = Field(default=None, description="Whether the reading actor may do it; None if unknown.")
    why_not: str = Field(default="", description="Why the reading actor may not do it.")
    submit: str = Field(default="", description="How to complete it: the command or tool call.")
    skip: str = Field(default="", description="How to skip it (optional steps only).")
    actor: str | None = Field(default=None, description="Who completed or skipped it.")
    at: str | None = None
    reason: str | None = Field(default=None, description="Why it was skipped.")


class HowTo(_Model):
    """How to act on this run from the reader's channel (the CLI or MCP tools)."""

    status: str
    guide: str
    close: str = Field(default="", description="Tier 3: how to close the run, with an optional outcome.")
    cancel: str


class GuidanceContext(_Model):
    """Everything a guidance wrapper may use. Names not listed here are errors (StrictUndefined)."""

    tier: int
    tier_name: str
    channel: Channel
    actor: str | None = Field(default=None, description="Who is reading, if known (agent:NAME or human:NAME).")
    process: ProcessView
    run: RunView
    data: dict[str, Any]
    data_json: str = Field(description="The run's data as indented JSON.")
    steps: list[StepGuide]
    ready: list[StepGuide] = Field(description="Steps ready now that a person or agent does (not decide steps).")
    current: StepGuide | None = Field(default=None, description="The one step to do now: the first of `ready`.")
    done: list[StepGuide]
    conventions: str | None = Field(default=None, description="Tier 3: the conventions, rendered with the start data.")
    waiting: list[str] = Field(default_factory=list, description="Tier 1: what the run waits for besides people "
                                                                 "(timers, messages), in words.")
    how: HowTo

    def template_context(self) -> dict[str, Any]:
        """Plain values for Jinja (dicts and lists, no model objects)."""
        return self.model_dump(mode="json")


def build_context(run: RunInfo, *, process: ProcessView | None = None, resources: Mapping[str, Any] | None = None,
                  channel: Channel = "cli", actor: Actor | None = None, roles: Roles | None = None,
                  conventions: str | None = None, waiting: list[str] | None = None) -> GuidanceContext:
    """The guidance context of one run, as ``Engine.status`` sees it (any tier's ``RunInfo``)."""
    how = _how(run.id, channel, actor)
    steps = [_step(view, run, channel, actor, roles, resources or {}) for view in run.steps]
    ready = [s for s in steps if s.state == "ready" and s.decide is None]
    return GuidanceContext(
        tier=run.tier, tier_name=TIER_NAMES.get(run.tier, f"tier {run.tier}"), channel=channel,
        actor=str(actor) if actor is not None else None,
        process=process or ProcessView(id=run.process, title=run.title),
        run=RunView(id=run.id, status=run.status, started_by=run.started_by, created_at=run.created_at,
                    ended_at=run.ended_at, definition_version=run.definition_version),
        data=run.data, data_json=json.dumps(run.data, indent=2, ensure_ascii=False, sort_keys=True),
        steps=steps, ready=ready if run.status == "active" else [],
        current=ready[0] if ready and run.status == "active" else None,
        done=[s for s in steps if s.state == "done"], conventions=conventions,
        waiting=list(waiting or []) if run.status == "active" else [], how=how)


def _actor_text(actor: Actor | None) -> str:
    return str(actor) if actor is not None else "agent:NAME"


def _how(run_id: str, channel: Channel, actor: Actor | None) -> HowTo:
    if channel == "mcp":
        return HowTo(status=f'get_run(run="{run_id}")', guide=f'get_guidance(run="{run_id}")',
                     close=f'complete_step(run="{run_id}", step="work", evidence={{...outcome, or {{}}}})',
                     cancel="ask the person who asked for this work to cancel the run")
    who = _actor_text(actor)
    return HowTo(status=f"tiergate status {run_id}", guide=f"tiergate guide {run_id}",
                 close=f"tiergate complete {run_id} --outcome '{{...}}' --actor {who}",
                 cancel=f"tiergate cancel {run_id} --reason '...' --actor {who}")


def _submit(run_id: str, step_id: str, channel: Channel, actor: Actor | None) -> tuple[str, str]:
    if channel == "mcp":
        return (f'complete_step(run="{run_id}", step="{step_id}", evidence={{...}})',
                f'skip_step(run="{run_id}", step="{step_id}", reason="...")')
    who = _actor_text(actor)
    return (f"tiergate complete {run_id} {step_id} --evidence '{{...}}' --actor {who}",
            f"tiergate skip {run_id} {step_id} --reason '...' --actor {who}")


def _may_act(view: StepView, run: RunInfo, actor: Actor | None, roles: Roles | None) -> tuple[bool | None, str]:
    if actor is None:
        return None, ""
    if view.decide is not None:
        return False, "the engine decides this step"
    if view.actors and actor.kind not in view.actors:
        needed = " or ".join("a person" if k == "human" else "an agent" for k in view.actors)
        return False, f"it needs {needed}; hand it over"
    if view.roles:
        members: set[str] = set()
        for role in view.roles:
            if roles is not None and role in roles.roles:
                members.update(roles.roles[role].members)
        if str(actor) not in members:
            return False, f"{actor} is not a member of {' or '.join(view.roles)} (tiers/roles.yaml)"
    if view.distinct_from:
        earlier = next((s for s in run.steps if s.id == view.distinct_from), None)
        if earlier is not None and earlier.state == "done" and earlier.actor == str(actor):
            return False, f"{actor} completed `{view.distinct_from}`; four eyes: someone else must do this one"
    return True, ""


def _step(view: StepView, run: RunInfo, channel: Channel, actor: Actor | None, roles: Roles | None,
          resources: Mapping[str, Any]) -> StepGuide:
    submit, skip = _submit(run.id, view.id, channel, actor)
    may, why = _may_act(view, run, actor, roles) if view.state == "ready" else (None, "")
    evidence = evidence_words(view.done_when, resources) if view.done_when is not None else None
    return StepGuide(
        id=view.id, title=view.title, state=view.state, optional=view.optional, instructions=view.instructions or "",
        evidence=evidence, who=who_may(view), actors=list(view.actors), roles=list(view.roles),
        waits_for=list(view.waits_for), distinct_from=view.distinct_from, decide=view.decide, you_may=may,
        why_not=why, submit=submit if view.decide is None else "", skip=skip if view.optional else "",
        actor=view.actor, at=view.at, reason=view.reason)
