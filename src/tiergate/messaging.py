"""Which run a message goes to: the one active Tier 1 run waiting for it (``tiergate.bpmn.messages``).

Each Tier 1 run's state lists the messages it waits for, with the values each must match. A
message goes to the single run with a waiting catch that matches its name and correlation
values; no match, or more than one, is refused with what is waiting, so nothing is delivered to
a guess and nothing is dropped silently. The runs are read in pages, without a lock.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection

from tiergate.bpmn.messages import matches
from tiergate.errors import RefusedError, UsageError
from tiergate.store.runs import active_tier1_states


def _waiting(conn: Connection) -> Any:
    for run_id, state in active_tier1_states(conn):
        yield run_id, state.get("messages") or []


def find_waiting_run(conn: Connection, name: str, correlate: dict[str, Any]) -> str:
    if not name or not name.strip():
        raise UsageError("a message needs a name: `tiergate message NAME --correlate KEY=VALUE`.", code="usage")
    found: list[str] = []
    same_name: list[dict[str, Any]] = []
    for run_id, waiting in _waiting(conn):
        for entry in waiting:
            if matches(entry, name, correlate):
                found.append(run_id)
                break
            if entry.get("message") == name and len(same_name) < 5:
                same_name.append({"run": run_id, "element": entry.get("element"), "correlate": entry.get("correlate")})
    if len(found) == 1:
        return found[0]
    if not found:
        waits = "; ".join(f"run {w['run']} at {w['element']} for {w['correlate']}" for w in same_name)
        hint = (f"Runs waiting for '{name}': {waits}. Give --correlate with their values." if same_name else
                f"No active run waits for '{name}' now: check the message name, or whether the run has got there.")
        raise RefusedError(f"message '{name}' with {correlate or 'no correlation'} matches no waiting run; it was "
                           f"not delivered. {hint}", reason="no_waiting_run",
                           details={"message": name, "correlate": correlate, "waiting": same_name})
    raise RefusedError(f"message '{name}' with {correlate or 'no correlation'} matches {len(found)} runs "
                       f"({', '.join(found[:5])}); it was not delivered. Add --correlate keys that tell them apart.",
                       reason="message_ambiguous", details={"message": name, "correlate": correlate, "runs": found})
