"""The scenario file format: ``processes/tests/<process-id>*.yaml``, ``checklists/tests/<process-id>*.yaml``.

    process: support-triage           # optional: else the longest catalog id the file name starts with
    scenarios:
      - name: a platinum S1 goes to the major-incident queue
        actor: agent:triage-bot        # who acts unless a step says otherwise
        at: 2026-01-05T09:00:00Z       # the test clock at the start (this is the default)
        start: {ticket_id: SUP-1234, client_tier: platinum}
        steps:
          - complete: gather-context
            evidence: {...}
          - complete: classify
            evidence: {severity: S9}
            gate_fails: /severity      # expected: the gate refuses (text found in an error's pointer or message)
          - complete: hand-off
            actor: agent:triage-bot
            refused: not_ready         # expected: refused with this reason
          - skip: reproduce
            reason: not reproducible from the ticket
          - after: PT49H               # the test clock moves on and due timers fire
          - message: ci_passed         # Tier 1: a message to the run, as `tiergate message` sends it
            correlate: {change_id: CH-7}
            data: {build: 4711}
          - expect:
              status: active
              ready: [assign, acknowledge]
              data: {priority: P1}     # these keys have these values
              decisions: {support_triage: {route: major-incident}}
              path: [classify, route]  # Tier 1: elements reached, in this order (others may come between)
              events: [sent_back review, step_ready draft]   # log entries, in this order ("event" or "event step")

Frozen pydantic models with ``extra="forbid"``; reading the file and the lines of its parts is
``tiergate.scenarios.runner``'s job.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from tiergate.definitions.models import ActorRef, Slug

DEFAULT_START = datetime(2026, 1, 5, 9, 0, tzinfo=timezone.utc)
ACTIONS = ("complete", "skip", "after", "message", "expect")


class Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Expect(Frozen):
    status: Literal["active", "completed", "failed", "cancelled"] | None = None
    ready: list[str] | None = Field(None, description="Exactly these steps are ready (in any order).")
    done: list[str] | None = Field(None, description="These steps are done (others may be too).")
    skipped: list[str] | None = Field(None, description="These steps are skipped (others may be too).")
    data: dict[str, Any] | None = Field(None, description="These keys of the run's data have these values.")
    decisions: dict[str, dict[str, Any]] | None = Field(
        None, description="Per decision id: outputs of its latest evaluation in this run (those named).")
    path: list[str] | None = Field(None, description="Tier 1: elements reached, in this order.")
    events: list[str] | None = Field(None, description="Log entries in this order: 'event' or 'event step'.")


class Action(Frozen):
    """One line of a scenario: exactly one of complete, skip, after, message or expect."""

    complete: str | None = None
    skip: str | None = None
    after: str | None = Field(None, description="An ISO 8601 duration the test clock moves on (PT49H).")
    message: str | None = Field(None, description="Tier 1: the name of a message sent to the run.")
    correlate: dict[str, Any] | None = Field(None, description="With message: the values it correlates on.")
    data: dict[str, Any] | None = Field(None, description="With message: the message's data.")
    expect: Expect | None = None
    actor: ActorRef | None = None
    evidence: dict[str, Any] | None = None
    reason: str | None = None
    gate_fails: str | list[str] | None = None
    refused: str | None = None

    @model_validator(mode="after")
    def _one_action(self) -> Action:
        given = [name for name in ACTIONS if getattr(self, name) is not None]
        if len(given) != 1:
            raise ValueError(f"each step of a scenario is exactly one of {', '.join(ACTIONS)}; "
                             f"this one has {', '.join(given) or 'none'}")
        if self.gate_fails is not None and self.refused is not None:
            raise ValueError("expect either gate_fails or refused, not both")
        if self.gate_fails is not None and given[0] not in ("complete", "skip"):
            raise ValueError("gate_fails belongs to a complete or a skip")
        if self.refused is not None and given[0] not in ("complete", "skip", "message"):
            raise ValueError("refused belongs to a complete, a skip or a message")
        if (self.correlate is not None or self.data is not None) and given[0] != "message":
            raise ValueError("correlate and data belong to a message")
        if self.skip is not None and not self.reason:
            raise ValueError("a skip needs a reason")
        return self

    @property
    def kind(self) -> str:
        return next(name for name in ACTIONS if getattr(self, name) is not None)


class Scenario(Frozen):
    name: str
    actor: ActorRef = "agent:scenario"
    at: datetime = DEFAULT_START
    start: dict[str, Any] = Field(default_factory=dict)
    steps: list[Action] = Field(default_factory=list)


class ScenarioFile(Frozen):
    process: Slug | None = None
    scenarios: list[Scenario] = Field(min_length=1)
