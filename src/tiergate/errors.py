"""The one error tree of tiergate.

Every error a user can meet is a ``TiergateError``. Each carries a stable machine ``code``
(what scripts and agents branch on), a ``message`` that says what is wrong, where, and what
to do, and ``details``: a JSON-serialisable dict with the specifics (JSON pointers, rule ids,
file and line).

    TiergateError
    ├── DefinitionError            a definition file is malformed or inconsistent
    │   └── DMNError               a DMN model cannot be parsed or is not supported
    ├── EvaluationError            an expression or decision failed while being evaluated
    │   ├── FEELError              FEEL syntax or runtime error
    │   └── LimitExceededError     an evaluation or an input went over a budget (tiergate.limits)
    ├── UsageError                 a bad argument: malformed --data JSON, bad actor, ...
    │   ├── SigningKeyError        a log or witness key missing or malformed
    │   └── ReasonMissingError     a skip or cancel without a reason (logged as `refused`)
    ├── InvalidDataError           well-formed data that does not fit: start data against `inputs`
    ├── NotFoundError              an unknown process, run, step or decision
    ├── RefusedError               an attempt that breaks the process (logged as `refused`)
    ├── GateFailedError            evidence that does not pass a step's gate (logged as `gate_failed`)
    │   └── ActorMismatchError     a door's credential is one principal, the attempt names another
    ├── UnauthorizedError          no credential, or a revoked, expired or unknown one (HTTP 401)
    ├── ConflictError              someone else changed the run first; re-read and retry
    │   └── StaleReadError         a step would write a data store another run wrote since it read it
    ├── DatabaseError              the database is unreachable or at the wrong schema
    │   └── SchemaOutdatedError    run `tiergate db upgrade`
    ├── IntegrityError             the execution log's hash chain is broken
    │   └── DefinitionTamperedError a pinned definition snapshot no longer matches its version hash
    └── CheckpointError            a checkpoint, signature or proof that does not hold

The CLI turns these into exit status 1 (2 for a ``UsageError``) and, with ``--json``, into the error envelope
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


class LimitExceededError(EvaluationError):
    """Over a budget of ``tiergate.limits``: ``details.limit`` names it, ``details.where`` the element or field."""

    code = "limit_exceeded"


class UsageError(TiergateError):
    code = "usage"


class ReasonMissingError(UsageError):
    """A skip or a cancel without a reason. A usage error (exit 2), and an attempt on a run: logged
    in its log as ``refused`` with reason ``reason_missing``, like any refused attempt."""

    code = "reason_missing"

    def __init__(self, message: str):
        super().__init__(message, details={"reason": "reason_missing"})


class InvalidDataError(TiergateError):
    """Data that is well-formed but does not fit: not a JSON object, or failing the process's ``inputs``.

    Not a usage error: the command was right, the data was not (exit 1, like a failed gate).
    """

    code = "invalid_data"


class NotFoundError(TiergateError):
    code = "not_found"


class RefusedError(TiergateError):
    """An attempt out of order, by the wrong actor, or on a finished run.

    ``reason`` is one of: not_ready, already_done, actor_not_allowed, same_actor,
    run_not_active, not_optional, unknown_step, data_conflict, not_failed (a retry of a run
    that has not failed), not_retryable (a retry of a run a retry cannot mend),
    tier_definition_missing (at start: the routed tier has no definition).
    """

    code = "refused"

    def __init__(self, message: str, *, reason: str, details: dict[str, Any] | None = None):
        super().__init__(message, details={"reason": reason, **(details or {})})
        self.reason = reason


class ActorMismatchError(RefusedError):
    """``--actor`` (or an actor argument) names someone other than the credential's principal."""

    code = "actor_mismatch"

    def __init__(self, message: str, *, details: dict[str, Any] | None = None):
        super().__init__(message, reason="actor_mismatch", details=details)


class UnauthorizedError(TiergateError):
    """No credential, or one that is unknown, revoked, expired or of a disabled principal.

    The message never repeats the credential itself.
    """

    code = "unauthorized"


class GateFailedError(TiergateError):
    code = "gate_failed"


class ConflictError(TiergateError):
    code = "conflict"


class StaleReadError(ConflictError):
    """A completion (or skip) of a step would write a BPMN data store that another run wrote after the
    step read it (``tiergate.datastores``): refused, logged, and the step's read renewed.

    ``refreshed`` is what the engine saves with the ``refused`` entry: the run's state with the
    step's data holding the store's current value, its status and the move's other entries."""

    code = "data_store_stale"

    def __init__(self, message: str, *, details: dict[str, Any] | None = None, refreshed: Any = None):
        super().__init__(message, details={"reason": "data_store_stale", **(details or {})})
        self.refreshed = refreshed


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


class CheckpointError(TiergateError):
    """A checkpoint, signed note, cosignature or proof that does not hold (codes: checkpoint_invalid,
    signature_invalid, proof_invalid, log_forked, witness_refused)."""

    code = "checkpoint_invalid"


class SigningKeyError(UsageError):
    """A log or witness key that is missing, unreadable or malformed."""

    code = "key_invalid"


class DefinitionTamperedError(IntegrityError):
    """A stored definition snapshot whose content no longer hashes to its version: edited in the database."""

    code = "definition_tampered"
