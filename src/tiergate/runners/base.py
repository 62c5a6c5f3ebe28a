"""The runner contract: what every tier's runner does, and what it must never do.

A runner turns a definition and a run's stored state into the next state. It is pure with
respect to storage: it never opens a transaction, never writes the log and never prints. (Tier 1
reads BPMN data stores through ``RunContext.stores``, which the engine gives it, and records its
writes there; the engine applies them with the transition.)
The ``Engine`` reads the run, calls the runner, and commits the returned ``Transition``
(new state, new status, log events) in one transaction, or nothing at all.

Contract, for every runner:

* ``start(definition, data, ctx)`` validates the start data and returns the first state,
  with a ``started`` event and a ``step_ready`` event for each step ready at once.
* ``steps(definition, state)`` lists every step with one of the states ``done``, ``ready``,
  ``locked`` or ``skipped``.
* ``complete_step(definition, state, step, evidence, ctx)`` checks, in this order, that the
  step exists and is ready (``RefusedError`` with reason ``unknown_step``, ``not_ready`` or
  ``already_done``), that the actor may do it (``actor_not_allowed``, ``same_actor``), and that
  the evidence passes the step's gate (``GateFailedError``). Only then does it return a
  transition with ``step_completed``, any ``step_ready`` that follow, and ``completed`` when
  the run is finished. A refused attempt raises and changes nothing; the engine logs it.
* ``skip_step`` is the same for optional steps, with a reason (``not_optional`` otherwise).
* Whether the run is active is checked by the engine before any runner is called.

One test suite (``tests/test_runner_contract.py``) holds every runner to this.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, ClassVar, Protocol

from tiergate.actors import Actor
from tiergate.definitions.models import Roles
from tiergate.lifecycle import RunStatus
from tiergate.log import LogEvent
from tiergate.runview import StepView, render_ready

__all__ = ["Definition", "RunContext", "Runner", "StepView", "Transition"]


@dataclass
class RunContext:
    """Everything a runner may know besides the definition and the state."""

    run_id: str
    actor: Actor
    now: datetime
    roles: Roles | None = None
    #: The move's access to the process's data stores (``tiergate.datastores.StoreAccess``), given
    #: by the engine; its writes are applied in the transaction that saves the transition.
    stores: Any = None


@dataclass
class Transition:
    state: dict[str, Any]
    status: RunStatus
    events: list[LogEvent] = field(default_factory=list)


class Definition(Protocol):
    """What every tier's definition offers the engine."""

    source: str

    @property
    def version(self) -> str: ...

    @property
    def title(self) -> str: ...

    def snapshot(self) -> dict[str, Any]: ...


class Runner(ABC):
    tier: ClassVar[int]
    kind: ClassVar[str]
    #: Where this tier's definition of a process lives, relative to the home.
    definition_path: ClassVar[str]

    @abstractmethod
    def load_definition(self, definitions: Any, process_id: str) -> Definition:
        """The current definition of ``process_id`` from the home's files (raises if broken)."""

    @abstractmethod
    def from_snapshot(self, body: dict[str, Any]) -> Definition:
        """Rebuild a pinned definition from its stored snapshot."""

    def describe(self, definition: Any) -> dict[str, Any]:
        """Extra facts for `tiergate processes --json` (inputs schema, step ids)."""
        return {}

    @abstractmethod
    def start(self, definition: Any, data: dict[str, Any], ctx: RunContext) -> Transition: ...

    @abstractmethod
    def steps(self, definition: Any, state: dict[str, Any], *, run: dict[str, Any]) -> list[StepView]: ...

    def render(self, views: list[StepView], data: dict[str, Any], *, run_id: str, process_id: str,
               bare_names: dict[str, dict[str, Any]] | None = None) -> None:
        """Render the ready steps' instructions of ``views`` (made by ``steps`` just before) in place
        (``bare_names``: ``instruction_names``'s answer)."""
        render_ready(views, data, run_id=run_id, process_id=process_id, bare_names=bare_names)

    @abstractmethod
    def complete_step(self, definition: Any, state: dict[str, Any], step_id: str, evidence: Any,
                      ctx: RunContext) -> Transition: ...

    @abstractmethod
    def skip_step(self, definition: Any, state: dict[str, Any], step_id: str, reason: str,
                  ctx: RunContext) -> Transition: ...

    def cancel(self, definition: Any, state: dict[str, Any], reason: str, ctx: RunContext) -> Transition:
        """Cancel the run. Runners with resources to release override this."""
        return Transition(state=state, status=RunStatus.CANCELLED,
                          events=[LogEvent("cancelled", ctx.actor, detail={"reason": reason})])

    def data(self, state: dict[str, Any]) -> dict[str, Any]:
        """The run's data: start data plus what its steps produced."""
        return dict(state.get("data", {}))

    def instruction_names(self, definition: Any, state: dict[str, Any],
                          views: list[StepView]) -> dict[str, dict[str, Any]] | None:
        """None: instructions read ``data``, ``run`` and ``steps`` only. Tier 1 answers a dict: they read the
        data's fields by name too, and a step's own names (by step id: an instance's item) come first."""
        return None
