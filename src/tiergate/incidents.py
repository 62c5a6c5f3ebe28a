"""Failures no check foresaw: an incident id for the caller, the traceback for the operator.

    incident = incidents.report(exc, door="api", what="POST /api/runs", actor="agent:bot")
    incident.envelope()     # {"ok": false, "error": {"code": "internal_error", "message": "... incident 3f9c0a1b2c4d ...",
                            #  "details": {"incident": "3f9c0a1b2c4d"}}}
    incidents.record(engine, incident, door="api", attempt="start", actor=..., credential=...)

Every door has its own last catch (the API's ``answer``, the MCP tools' ``call``, the web pages'
``Web.endpoint``, and ``tiergate.server.lastresort`` around the whole server). Each hands the
exception to ``report``, which writes one block to standard error (the server's log): the incident
id, the door, the method and path (never the query, a header, a cookie or a body), the principal,
and the traceback with anything that looks like a secret taken out (``scrub``). The caller gets
the id and no internal detail: no exception text, no traceback, no file name. ``record`` adds a
row to ``door_refusals`` (``tiergate log refusals``: code ``internal_error``, problem
``incident <id>``) when the caller is known, so the attempt is on record beside the refusals;
it never raises, and writes nothing when the database is away.
"""

from __future__ import annotations

import re
import secrets
import sys
import threading
import traceback
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TextIO

if TYPE_CHECKING:
    from tiergate.engine import Engine

CODE = "internal_error"
#: The HTTP status of an incident: the server's fault, not the request's.
STATUS = 500
#: JSON-RPC's "Internal error", for an MCP request that failed outside any tool.
RPC_CODE = -32603

_write_lock = threading.Lock()
_SECRETS = (
    (re.compile(r"tg_[A-Za-z0-9_-]{8,}"), "tg_[hidden]"),  # a bearer token
    (re.compile(r"(://[^:/@\s]*:)[^@/\s]+@"), r"\1[hidden]@"),  # a password in a database URL
    (re.compile(r"\[parameters: .*?\](?=\n|$)", re.S), "[parameters hidden]"),  # SQLAlchemy's bound values
    (re.compile(r"(?i)\b(password|secret|cookie|authorization|token)(['\"]?\s*[:=]\s*)\S+"), r"\1\2[hidden]"),
)


@dataclass(frozen=True)
class Incident:
    """One unforeseen failure: the id the caller is given and the server's log is searched by."""

    id: str

    @property
    def message(self) -> str:
        return (f"tiergate failed unexpectedly on this request (incident {self.id}); no check foresaw it, so it is a "
                "fault of the server, not of the request. The operator finds the details in the server's log under "
                "that id: please report it with the id. A change that was being made may or may not have been "
                "recorded: read it back before trying again.")

    @property
    def details(self) -> dict[str, Any]:
        return {"incident": self.id}

    def envelope(self) -> dict[str, Any]:
        return {"ok": False, "error": {"code": CODE, "message": self.message, "details": self.details}}


def scrub(text: str) -> str:
    """``text`` with what looks like a token, a password or bound SQL values taken out."""
    for pattern, replacement in _SECRETS:
        text = pattern.sub(replacement, text)
    return text


def report(error: BaseException, *, door: str, what: str, actor: Any = None, stream: TextIO | None = None) -> Incident:
    """A new incident for ``error``: its traceback written to ``stream`` (standard error) in one block."""
    incident = Incident(secrets.token_hex(6))
    try:
        trace = "".join(traceback.format_exception(type(error), error, error.__traceback__))
    except Exception:  # noqa: BLE001 - a traceback that cannot be formatted still leaves the incident's line
        trace = f"{type(error).__name__} (its traceback could not be formatted)\n"
    who = f" by {actor}" if actor is not None else ""
    head = f"tiergate: incident {incident.id}: {door} {what}{who}: unforeseen {type(error).__name__}\n"
    out = stream if stream is not None else sys.stderr
    try:
        with _write_lock:
            out.write(scrub(head + trace))
            out.flush()
    except (OSError, ValueError):  # standard error closed: the caller still gets the incident's id
        pass
    return incident


def record(engine: Engine, incident: Incident, *, door: str, attempt: str, actor: Any = None,
           credential: str | None = None) -> bool:
    """A row of ``door_refusals`` for ``incident`` (``tiergate.doorlog``); False if it could not be written."""
    from tiergate import doorlog

    try:
        return doorlog.record(engine, door=door, attempt=attempt, code=CODE, problem=f"incident {incident.id}",
                              actor=actor, credential=credential)
    except Exception:  # noqa: BLE001 - recording an incident must never cause another
        return False
