"""The lifecycle of a run: one enum, and one function that guards every change of status."""

from __future__ import annotations

from enum import Enum

from tiergate.errors import RefusedError


class RunStatus(str, Enum):
    ACTIVE = "active"
    COMPLETED = "completed"
    CANCELLED = "cancelled"
    FAILED = "failed"

    @property
    def is_final(self) -> bool:
        return self in (RunStatus.COMPLETED, RunStatus.CANCELLED)


# A failed run (a Tier 1 script error, say) can be retried back to active, or cancelled.
ALLOWED: dict[RunStatus, frozenset[RunStatus]] = {
    RunStatus.ACTIVE: frozenset({RunStatus.COMPLETED, RunStatus.CANCELLED, RunStatus.FAILED}),
    RunStatus.FAILED: frozenset({RunStatus.ACTIVE, RunStatus.CANCELLED}),
    RunStatus.COMPLETED: frozenset(),
    RunStatus.CANCELLED: frozenset(),
}


def transition(run_id: str, current: RunStatus, target: RunStatus) -> RunStatus:
    """Return ``target`` if the run may move there from ``current``; otherwise refuse."""
    if target == current or target in ALLOWED[current]:
        return target
    raise RefusedError(f"run {run_id} is {current.value}; it cannot become {target.value}. "
                       "Start a new run if the work must be done again.", reason="run_not_active",
                       details={"run": run_id, "status": current.value, "requested": target.value})


def require_active(run_id: str, current: RunStatus) -> None:
    if current != RunStatus.ACTIVE:
        raise RefusedError(f"run {run_id} is {current.value}, not active: nothing more can be done in it.",
                           reason="run_not_active", details={"run": run_id, "status": current.value, "see": "status"})
