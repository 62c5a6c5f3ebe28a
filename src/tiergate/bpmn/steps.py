"""What a Tier 1 step (a user or manual task) demands, read from its BPMN element and lane."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from tiergate.bpmn.model import Node
from tiergate.definitions.models import Roles

KINDS = ("agent", "human")
#: The engine's own kind: only built-in processes (``tiergate.change_process``) give it steps.
ENGINE = "system"
_SLUG = re.compile(r"[^a-z0-9]+")


def slug(text: str) -> str:
    return _SLUG.sub("-", text.strip().lower()).strip("-")


@dataclass(frozen=True)
class StepRules:
    """What a step (a user or manual task) demands of whoever completes it."""

    id: str
    title: str
    kind: str
    gate: dict[str, Any]
    actors: tuple[str, ...]
    roles: tuple[str, ...]
    lane: str | None
    distinct_from: str | None
    optional: bool
    instructions: str
    #: A multi-instance or loop task: one step per instance, ``ID[KEY]`` (tiergate.bpmn.instances).
    repeats: bool = False
    #: The BPMN element (``id`` is the step id, which for an instance carries its key).
    element: str = ""
    #: A service task: work for an agent, of this kind (None: any).
    topic: str | None = None
    #: A data field naming the role (or roles: all of them) whose member must do the step.
    roles_from: str | None = None
    #: A data field naming the one actor who must do the step.
    actor_from: str | None = None


def parse_gate(value: str) -> dict[str, Any]:
    """The gate property: inline JSON Schema, or ``schemas/NAME.json``. Raises ValueError."""
    text = value.strip()
    if text.startswith("{"):
        schema = json.loads(text)
        if not isinstance(schema, dict):
            raise ValueError("the gate must be a JSON object (a JSON Schema)")
        return schema
    if re.fullmatch(r"schemas/[A-Za-z0-9_.-]+\.(json|ya?ml)", text):
        return {"$ref": text}
    raise ValueError(f"'{text[:60]}' is neither inline JSON Schema (starting with '{{') nor a file reference "
                     "like schemas/NAME.json")


def step_rules(node: Node, lanes: dict[str, dict[str, list[str]]]) -> StepRules:
    lane = lanes.get(node.lane or "", {}) if node.lane else {}
    actors = list(lane.get("actors") or KINDS)
    narrowed = [a.strip() for a in node.properties.get("actors", "").split(",") if a.strip()]
    if narrowed == [ENGINE]:  # done by the engine itself (built-in processes only; check refuses it elsewhere)
        actors = [ENGINE]
    elif narrowed:
        actors = [a for a in actors if a in narrowed]
    if node.kind == "serviceTask" and actors != [ENGINE]:  # agents are the workers (or the engine itself)
        actors = [a for a in actors if a == "agent"]
    try:
        gate = parse_gate(node.properties.get("gate", "")) if node.properties.get("gate") else {}
    except (ValueError, json.JSONDecodeError):
        gate = {}
    return StepRules(id=node.id, title=node.title, kind=node.kind, gate=gate, actors=tuple(actors),
                     roles=tuple(lane.get("roles") or ()), lane=node.lane,
                     distinct_from=(node.properties.get("distinct_from") or "").strip() or None,
                     optional=node.properties.get("optional", "").strip().lower() == "true",
                     instructions=node.documentation, repeats=node.loop is not None, element=node.id,
                     topic=node.topic, roles_from=(node.properties.get("roles_from") or "").strip() or None,
                     actor_from=(node.properties.get("actor_from") or "").strip() or None)


def resolve_lane(label: str, lane_id: str, roles: Roles | None) -> dict[str, list[str]] | None:
    """A lane's roles or kind of actor; None if its name (or id) is neither."""
    if label.strip().lower() in KINDS:
        return {"roles": [], "actors": [label.strip().lower()]}
    if roles is None:
        return {"roles": [label], "actors": list(KINDS)}
    for candidate in (label, slug(label), lane_id):
        if candidate in roles.roles:
            return {"roles": [candidate], "actors": list(KINDS)}
    return None
