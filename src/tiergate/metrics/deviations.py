"""What counts as a deviation, derived from log entries only (docs/metrics.md has the table).

Every deviation is one log entry; nothing is stored elsewhere:

=================  ==========================================================================
kind               the entry
=================  ==========================================================================
``out_of_order``   ``refused`` with reason ``not_ready``, ``already_done``, ``unknown_step``
                   or ``run_not_active``
``wrong_actor``    ``refused`` with reason ``actor_not_allowed`` or ``same_actor``
``refused_other``  ``refused`` with any other reason (``not_optional``, ``data_conflict``, ...)
``gate_failed``    ``gate_failed``
``skipped``        ``step_skipped`` by an agent or a person (not the engine closing optional
                   steps when a run completes)
``escalated``      ``escalated``
``off_path``       any entry of a run whose ``detail`` has ``"off_path": true`` (Tier 1)
``direct_door``    ``step_completed`` or ``step_skipped`` by an agent or a person through the
                   ``direct`` door (on the database itself, not through ``tiergate serve``),
                   written once a server is in use: at or after the first principal's
                   registration (``store.credentials.in_use_since``)
=================  ==========================================================================

The off-path contract for Tier 1 runners: when a run leaves the expected path of its process
(an escalation, a rejection, a rollback, a loop back), the runner puts ``"off_path": true``
in the ``detail`` of the entry that records the departure (normally the ``step_ready`` of
the task reached over the unexpected flow, or the entry of the event that left the path),
once per departure. Each such entry is one ``off_path`` deviation.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import text
from sqlalchemy.sql.elements import TextClause

DEVIATION_KINDS = ("out_of_order", "wrong_actor", "refused_other", "gate_failed", "skipped", "escalated",
                   "off_path", "direct_door")

#: The door of the database itself, and the events that count when done through it with a server in use.
DIRECT_DOOR = "direct"
DIRECT_DOOR_EVENTS = ("step_completed", "step_skipped")


def is_direct_door(event: str, actor_kind: str | None, door: str | None, at: datetime,
                   since: datetime | None) -> bool:
    """Whether one entry is a ``direct_door`` deviation (``at`` and ``since`` aware UTC)."""
    return (since is not None and door == DIRECT_DOOR and event in DIRECT_DOOR_EVENTS and actor_kind != "system"
            and at >= since)


#: The key of ``detail`` that marks an entry as a departure from the expected path.
OFF_PATH_KEY = "off_path"

#: The predicate, spelled exactly as in the partial index ``ix_log_entries_off_path`` of
#: migration 0003, so the database answers it from that index instead of reading every detail.
OFF_PATH_SQL = {
    "sqlite": "json_type(detail, '$.off_path') = 'true'",
    "postgresql": "((detail -> 'off_path')::text) = 'true'",
}


#: Refusal reasons counted from their own partial index each (ix_log_entries_refused_order,
#: ix_log_entries_refused_actor): a refusal's reason is in its detail, and reading the detail
#: of every refusal is what these indexes avoid. Any other reason is ``refused_other``.
#: Changing these lists needs a migration that rebuilds the two indexes.
REFUSAL_GROUPS = {
    "out_of_order": ("not_ready", "already_done", "unknown_step", "run_not_active"),
    "wrong_actor": ("actor_not_allowed", "same_actor"),
}
#: A refusal is a ``refused`` entry whose detail holds the attempt refused and the reason code
#: (engine.Engine._act). The event comes first: a database tests the predicate of every partial
#: index on every entry written, and for the entries of a step (never refusals) the event alone
#: answers it without reading the detail's JSON (migration 0007). On SQLite the event is written
#: ``+event``, SQLite's way to keep a term from choosing an index: else the planner, which has no
#: statistics, would read refusals through the run-events index instead of their own.
_ATTEMPT = {"sqlite": "+event = 'refused' AND json_type(detail, '$.attempt') = 'text'",
            "postgresql": "event = 'refused' AND (detail ->> 'attempt') IS NOT NULL"}
_REASON = {"sqlite": "json_extract(detail, '$.reason')", "postgresql": "(detail ->> 'reason')"}


def refused_sql(dialect: str, kind: str) -> str:
    """The predicate of the partial index for one refusal group, spelled as in migration 0007."""
    reasons = ", ".join(f"'{reason}'" for reason in REFUSAL_GROUPS[kind])
    return f"{_ATTEMPT[dialect]} AND {_REASON[dialect]} IN ({reasons})"


def refusal_kind(reason: str | None) -> str:
    return next((kind for kind, reasons in REFUSAL_GROUPS.items() if reason in reasons), "refused_other")


def off_path_predicate(dialect: str) -> TextClause:
    return text(OFF_PATH_SQL[dialect])
