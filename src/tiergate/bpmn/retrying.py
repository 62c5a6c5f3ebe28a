"""Who may retry a failed Tier 1 run, and with what data.

``tiergate retry RUN ELEMENT --data JSON`` runs the failed element again after merging the data
into its task. It is a repair, not a way around the process, so:

* the actor must be a member of a role the process names in its ``retry_roles`` extension
  property (comma-separated), or, when it names none, of the process owner's role
  (``owner`` in tiers/catalog.yaml);
* the data may only set names that the failed element reads (its script and pre- and post-scripts,
  the conditions of its outgoing flows, its timer expression, its loop or multi-instance
  expressions and collection, the correlation expressions of a message it throws, the inputs of the decision it
  calls, the data objects it writes);
* it never replaces a step's evidence: that passed the step's gate and is the record of what
  someone did. A value that came from a step is fixed by sending the run back or starting a new one.
"""

from __future__ import annotations

import ast
from typing import Any

from tiergate.bpmn import feel, prepost
from tiergate.bpmn.checks import correlation_expressions
from tiergate.bpmn.definition import BpmnDefinition
from tiergate.bpmn.xml import BPMN_NS, CAMUNDA_NS
from tiergate.definitions.models import Roles
from tiergate.errors import RefusedError
from tiergate.runners.base import RunContext


def retry_roles(definition: BpmnDefinition, owner: str | None) -> list[str]:
    """The roles that may retry a failed run of ``definition``."""
    named = [r.strip() for r in definition.model.properties.get("retry_roles", "").split(",") if r.strip()]
    return named or ([owner] if owner else [])


def names_read(definition: BpmnDefinition, element: str) -> set[str]:
    """Every name the element ``element`` reads from the run's data."""
    model = definition.model
    node = model.nodes.get(element)
    texts: list[tuple[str, str]] = []
    names: set[str] = set()
    if node is not None:
        if node.script:
            texts.append((node.script, "exec"))
        if node.timer is not None:
            texts.append((node.timer.text, "eval"))
        texts.extend((text, "eval") for _what, text, _line in node.loop_expressions)
        tree = definition.tree
        scripts = prepost.scripts_by_element([tree]).get(element, {})
        texts.extend((scripts[kind], "exec") for kind in prepost.KINDS if kind in scripts)
        texts.extend((ref.text or "", "eval") for ref in tree.getroot().xpath(
            "//*[@id=$id]/bpmn:multiInstanceLoopCharacteristics/bpmn:loopDataInputRef", id=element,
            namespaces={"bpmn": BPMN_NS}))
        texts.extend((collection, "eval") for collection in tree.getroot().xpath(  # Camunda's input collection
            "//*[@id=$id]/bpmn:multiInstanceLoopCharacteristics[not(bpmn:loopCardinality)]/@camunda:collection",
            id=element, namespaces={"bpmn": BPMN_NS, "camunda": CAMUNDA_NS}))
        texts.extend((expression.text or "", "eval") for message in _thrown_messages(tree, element)
                     for expression, _owner in correlation_expressions(tree, message))
        names.update(_data_outputs(tree, element))
        if node.decision:
            decision = definition.decision_objects.get(node.decision)
            if decision is not None:
                names.update(decision.input_names)
    texts.extend((flow.condition, "eval") for flow in model.outgoing(element) if flow.condition)
    for text, mode in texts:
        names.update(_loaded_names(text, mode))
    return names


def _data_outputs(tree: Any, element: str) -> set[str]:
    """The data objects and data stores ``element`` writes (its dataOutputAssociations) and its ioSpecification's
    data outputs: they are taken from its data."""
    names: set[str] = set()
    for ref in tree.getroot().xpath("//*[@id=$id]/bpmn:dataOutputAssociation/bpmn:targetRef", id=element,
                                    namespaces={"bpmn": BPMN_NS}):
        for target in tree.getroot().xpath("//*[@id=$id]", id=(ref.text or "").strip()):
            names.add(target.get("dataObjectRef") or target.get("dataStoreRef") or target.get("id"))
    # Its ioSpecification's data outputs: a completion without them failed (Missing data output).
    names.update(output.get("id") for output in tree.getroot().xpath(
        "//*[@id=$id]/bpmn:ioSpecification/bpmn:dataOutput[@id]", id=element, namespaces={"bpmn": BPMN_NS}))
    return names


def _thrown_messages(tree: Any, element: str) -> set[str]:
    """The ids of the messages element ``element`` refers to (a send task's or a message event's messageRef)."""
    found = tree.getroot().xpath("//*[@id=$id]", id=element)
    refs: set[str] = set()
    for node in found[:1]:
        refs.update(ref for ref in (node.get("messageRef"),) if ref)
        refs.update(ref for child in node.iter(f"{{{BPMN_NS}}}messageEventDefinition")
                    if (ref := child.get("messageRef")))
    return refs


def _loaded_names(text: str, mode: str) -> set[str]:
    import textwrap

    if mode == "eval" and feel.is_feel(text):
        return feel.names_read(text)
    source = text.strip() if mode == "eval" else textwrap.dedent(text).strip("\n")
    try:
        tree = ast.parse(source, mode=mode)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return set()
    augmented = {node.target.id for node in ast.walk(tree)   # `total += 1` reads total too
                 if isinstance(node, ast.AugAssign) and isinstance(node.target, ast.Name)}
    return augmented | {node.id for node in ast.walk(tree)   # `del x` needs x too
                        if isinstance(node, ast.Name) and isinstance(node.ctx, (ast.Load, ast.Del))}


def check_retry(definition: BpmnDefinition, state: dict[str, Any], element: str, data: dict[str, Any],
                ctx: RunContext, owner: str | None) -> None:
    """Refuse a retry by an actor without the role, or with data it may not set."""
    roles = retry_roles(definition, owner)
    if not _member(ctx.roles, roles, str(ctx.actor)):
        raise RefusedError(
            f"{ctx.actor} may not retry run {ctx.run_id}: a retry needs a member of "
            f"{', '.join(roles) or 'the process owner role'} (tiers/roles.yaml; the process's retry_roles "
            "property, or its owner in tiers/catalog.yaml). Ask one of them.", reason="actor_not_allowed",
            details={"run": ctx.run_id, "step": element, "actor": str(ctx.actor), "roles": roles})
    reads = names_read(definition, element)
    unread = sorted(key for key in data if key not in reads)
    if unread:
        raise RefusedError(
            f"a retry of '{element}' can only set data it reads ({', '.join(sorted(reads)) or 'none'}); "
            f"{', '.join(unread)} {'is' if len(unread) == 1 else 'are'} not read there. Leave "
            f"{'it' if len(unread) == 1 else 'them'} out.", reason="data_not_read",
            details={"run": ctx.run_id, "step": element, "keys": unread, "reads": sorted(reads)})
    sources = state.get("sources", {})
    evidence = {key: sources[key] for key in data if sources.get(key) not in (None, "inputs")}
    if evidence:
        listed = ", ".join(f"'{k}' (evidence of step '{s}')" for k, s in sorted(evidence.items()))
        raise RefusedError(
            f"a retry cannot replace {listed}: it passed that step's gate and is the record of what was done. "
            "Cancel the run and start a new one with the right data, or fix the data the element itself reads.",
            reason="data_conflict", details={"run": ctx.run_id, "step": element, "keys": sorted(evidence)})


def _member(roles: Roles | None, wanted: list[str], actor: str) -> bool:
    if roles is None:
        return False
    return any(actor in roles.roles[name].members for name in wanted if name in roles.roles)
