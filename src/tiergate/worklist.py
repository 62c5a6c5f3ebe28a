"""Who does what now on an Engine's runs: the inbox and claims (``tiergate.claims``), and each
ready step in words as the doors and `tiergate guide` give it. A part of ``Engine``
(``class Engine(Worklist, ...)``).

    engine.inbox(actor="human:alice")          # ready steps alice may do, oldest first
    engine.claim(run_id, "review", actor="human:alice")
    engine.guide(run_id, actor="agent:triage-bot")
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from tiergate import claims, guidance
from tiergate.actors import Actor
from tiergate.guidance import Channel
from tiergate.runview import RunInfo, described, ready_in_words

if TYPE_CHECKING:
    from tiergate.engine import Engine


class Worklist:
    """The inbox, claims and a run's ready steps in words (``self`` is the Engine)."""

    def inbox(self: Engine, actor: str | Actor | None = None) -> list[dict[str, Any]]:
        """Every ready step of an active run that ``actor`` may do now, oldest first (with who claimed it)."""
        return claims.inbox(self, self.actor(actor))

    def claim(self: Engine, run_id: str, step_id: str, actor: str | Actor | None = None) -> dict[str, Any]:
        """Take on a ready step: others are refused it (``claimed_by_other``) until released or timed out."""
        return claims.change_claim(self, run_id, step_id, self.actor(actor), "claim")

    def unclaim(self: Engine, run_id: str, step_id: str, actor: str | Actor | None = None) -> dict[str, Any]:
        """Release a claim (one's own; the process owner's role may release anyone's)."""
        return claims.change_claim(self, run_id, step_id, self.actor(actor), "unclaim")

    def assign(self: Engine, run_id: str, step_id: str, assignee: str | Actor,
               actor: str | Actor | None = None) -> dict[str, Any]:
        """Claim a ready step for ``assignee`` (members of the process owner's role only)."""
        target = assignee if isinstance(assignee, Actor) else Actor.parse(assignee)
        return claims.change_claim(self, run_id, step_id, self.actor(actor), "assign", target)

    def described(self: Engine, info: RunInfo) -> dict[str, Any]:
        """The run as a dict, each ready step with ``who`` may do it and ``gate_words`` (its gate as
        `tiergate guide` words it): what every door answers for a run (``runview.described``)."""
        return described(info, self._resources(info))

    def ready_in_words(self: Engine, info: RunInfo) -> dict[str, dict[str, str]]:
        """Each ready step in words, as `tiergate guide` says it (``runview.ready_in_words``). By step id."""
        return ready_in_words(info, self._resources(info))

    def _resources(self: Engine, info: RunInfo) -> dict[str, Any]:
        """The shared schema files of the definition ``info``'s run is pinned to."""
        definition = self._definitions_by_version.get(info.definition_version)
        if definition is None:
            with self.db.read() as conn:
                definition = self._pinned(conn, self._get(conn, info.id))
        return getattr(definition, "resources", {})

    def guide(self: Engine, run_id: str, *, actor: str | Actor | None = None,
              channel: Channel = "cli") -> dict[str, Any]:
        """What to read now for RUN: its tier's guidance wrapper rendered, and each ready step's gate in words."""
        reader = self.actor(actor) if actor is not None or self.default_actor else None
        with self.db.read() as conn:
            run = self._get(conn, run_id)
            definition = self._pinned(conn, run)
        return guidance.guide(self._info(run, definition), definition, run.state, self.definitions,
                              channel=channel, actor=reader)
