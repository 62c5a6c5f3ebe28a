"""Guidance: what an agent (or person) should read now for a run, written for the run's tier.

    answer = guide(run_info, definition, state, definitions, channel="mcp", actor=agent)
    answer["text"]       # the tier's wrapper rendered: markdown
    answer["ready"]      # each ready step with its instructions, gate in words and as a schema

The wrapper is ``tiers/guidance/tier<N>.md.j2`` in the home, or the packaged default
(``tiergate/guidance/templates/``). It renders from one typed context
(``GuidanceContext``, documented in docs/guidance.md) in the sandbox, with run data and
evidence only ever as values. ``words`` turns each evidence gate into plain words.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tiergate.actors import Actor
    from tiergate.definitions.home import Definitions
    from tiergate.guidance.context import (Channel, EvidenceWords, GuidanceContext, ProcessView, StepGuide,
                                           build_context, evidence_words)
    from tiergate.guidance.render import guidance_answer, render_guidance, sample_context
    from tiergate.guidance.schema import inline_refs
    from tiergate.guidance.words import describe, who_may

#: Name -> the module that defines it. Loaded on first use, so that a reader of ``words`` alone
#: (`tiergate status` on the database) loads neither pydantic's models nor Jinja's wrappers.
_FROM = {"Channel": "context", "EvidenceWords": "context", "GuidanceContext": "context", "ProcessView": "context",
         "StepGuide": "context", "build_context": "context", "evidence_words": "context",
         "guidance_answer": "render", "render_guidance": "render", "sample_context": "render",
         "describe": "words", "inline_refs": "schema", "who_may": "words"}

__all__ = ["Channel", "EvidenceWords", "GuidanceContext", "ProcessView", "StepGuide", "build_context", "describe",
           "evidence_words", "guidance_answer", "guide", "inline_refs", "render_guidance", "sample_context",
           "who_may"]


def __getattr__(name: str) -> Any:
    if name not in _FROM:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(import_module(f"{__name__}.{_FROM[name]}"), name)
    globals()[name] = value
    return value


def guide(run: Any, definition: Any, state: dict[str, Any], definitions: Definitions, *, channel: Channel = "cli",
          actor: Actor | None = None) -> dict[str, Any]:
    """Render the guidance of one run (``run`` is the engine's ``RunInfo``, ``definition`` its pinned definition)."""
    from tiergate.guidance.context import ProcessView, build_context
    from tiergate.guidance.render import guidance_answer, render_guidance

    entry = definitions.catalog.get(run.process) if definitions.catalog is not None else None
    # The title is the pinned definition's, as `status` shows it; the rest comes from the catalog.
    process = ProcessView(id=run.process, title=run.title) if entry is None else ProcessView(
        id=entry.id, title=run.title, area=entry.area, owner=entry.owner, expected_minutes=entry.expected_minutes,
        description=entry.description)
    context = build_context(run, process=process, resources=getattr(definition, "resources", None) or {},
                            channel=channel, actor=actor, roles=definitions.roles,
                            conventions=state.get("conventions"), waiting=_waiting(state))
    home = definitions.home
    text, template = render_guidance(context, home.guidance_dir, display=home.display)
    return guidance_answer(context, text, template)


def _waiting(state: dict[str, Any]) -> list[str]:
    """Tier 1: the timers and messages a run waits for, each in words an agent can act on."""
    found = [f"the timer of the start event `{t['timer']}`: the process begins when it is due, at {t['due']} "
             "(`tiergate worker` fires it)" if t.get("start") else f"timer `{t['timer']}`, due {t['due']}"
             for t in state.get("timers") or []]
    for entry in state.get("messages") or []:
        keys = " ".join(f"--correlate {k}={v}" for k, v in (entry.get("correlate") or {}).items())
        command = f"`tiergate message {entry['message']}{' ' + keys if keys else ''} --data '{{...}}'`"
        if entry.get("starts"):  # the start of an event subprocess: it may come; nothing waits for it
            found.append(f"message `{entry['message']}`, if it comes, starts the event subprocess "
                         f"`{entry['starts']}` at `{entry['element']}` (its sender delivers it with {command})")
        else:
            found.append(f"message `{entry['message']}` at `{entry['element']}` (its sender delivers it with "
                         f"{command})")
    return found
