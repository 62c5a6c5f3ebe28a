"""The one error tree of tiergate.

Every error a user can meet is a ``TiergateError``. Each carries a stable machine ``code``
(what scripts and agents branch on), a ``message`` that says what is wrong, where, and what
to do, and ``details``: a JSON-serialisable dict with the specifics (JSON pointers, rule ids,
file and line).

    TiergateError
    ├── DefinitionError            a definition file is malformed or inconsistent
    │   └── DMNError               a DMN model cannot be parsed or is not supported
    ├── EvaluationError            an expression or decision failed while being evaluated
    │   └── FEELError              FEEL syntax or runtime error
    ├── UsageError                 a bad argument: malformed --data JSON, bad actor, ...
    ├── NotFoundError              an unknown process, run, step or decision
    ├── RefusedError               an attempt that breaks the process (logged as `refused`)
    ├── GateFailedError            evidence that does not pass a step's gate (logged as `gate_failed`)
    ├── ConflictError              someone else changed the run first; re-read and retry
    ├── DatabaseError              the database is unreachable or at the wrong schema
    │   └── SchemaOutdatedError    run `tiergate db upgrade`
    └── IntegrityError             the execution log's hash chain is broken
        └── DefinitionTamperedError a pinned definition snapshot no longer matches its version hash

The CLI turns these into exit status 1 and, with ``--json``, into the error envelope
``{"ok": false, "error": {"code", "message", "details"}}``. Nothing below the CLI prints.
"""

from __future__ import annotations

from typing import Any


class TiergateError(Exception):
    """Base of every error tiergate raises on purpose."""

    code: str = "error"

    def __init__(self, message: str, *, code: str | None = None, details: dict[str, Any] | None = None):
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        self.details: dict[str, Any] = details or {}

    def to_dict(self) -> dict[str, Any]:
        return {"code": self.code, "message": self.message, "details": self.details}


class DefinitionError(TiergateError):
    code = "definition_invalid"


class DMNError(DefinitionError):
    code = "dmn_invalid"


class EvaluationError(TiergateError):
    code = "evaluation_failed"


class FEELError(EvaluationError):
    code = "feel_error"


class UsageError(TiergateError):
    code = "usage"


class NotFoundError(TiergateError):
    code = "not_found"


class RefusedError(TiergateError):
    """An attempt out of order, by the wrong actor, or on a finished run.

    ``reason`` is one of: not_ready, already_done, actor_not_allowed, same_actor,
    run_not_active, not_optional, unknown_step, data_conflict, not_failed (a retry of a run
    that has not failed), tier_definition_missing (at start: the routed tier has no definition).
    """

    code = "refused"

    def __init__(self, message: str, *, reason: str, details: dict[str, Any] | None = None):
        super().__init__(message, details={"reason": reason, **(details or {})})
        self.reason = reason


class GateFailedError(TiergateError):
    code = "gate_failed"


class ConflictError(TiergateError):
    code = "conflict"


class DatabaseError(TiergateError):
    code = "database_error"


class SchemaOutdatedError(DatabaseError):
    code = "schema_outdated"


class ConnectionLostError(DatabaseError):
    """The database connection broke during a transaction.

    ``committed`` is False when it broke before the commit was sent: nothing was recorded and
    the attempt may be made again. It is None when it broke during the commit: the server may
    have recorded the change or not, and only reading the data again tells which.
    """

    code = "connection_lost"

    def __init__(self, message: str, *, committed: bool | None):
        super().__init__(message, details={"committed": committed})
        self.committed = committed


class IntegrityError(TiergateError):
    code = "log_tampered"


class DefinitionTamperedError(IntegrityError):
    """A stored definition snapshot whose content no longer hashes to its version: edited in the database."""

    code = "definition_tampered"
