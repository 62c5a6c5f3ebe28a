"""Role members and the server's principals: which members of ``tiers/roles.yaml`` are not registered.

A server is *in use* once the database holds a principal (``tiergate principals add``; a token
needs one, so a database with tokens has principals too). From then on every member of a role
must be a registered principal, or the member cannot come through the server's doors:
``tiergate check`` names each one that is not (an error) and each one that is disabled (a warning).

The check reads the database only when it can without changing it: a SQLite file that does not
exist is not created, a database without the principals table is not migrated, and a database
that cannot be reached is skipped (``check`` is about definitions and never fails for it).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import inspect
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, SQLAlchemyError

from tiergate.definitions.problems import Problem
from tiergate.errors import TiergateError
from tiergate.store import credentials as store
from tiergate.store.db import Database

if TYPE_CHECKING:
    from tiergate.engine import Engine

ROLES_FILE = "tiers/roles.yaml"


def _principals(engine: Engine) -> dict[str, dict[str, Any]] | None:
    """Every principal by id, or None when no server is in use or the database cannot be read."""
    try:
        url = make_url(engine.database_url)
    except ArgumentError:
        return None
    if engine._db is None and url.get_backend_name() == "sqlite" and url.database not in (None, "", ":memory:") \
            and not Path(url.database).is_file():
        return None  # not created by a check
    try:
        database = engine._db if engine._db is not None else Database(engine.database_url)
    except TiergateError:
        return None
    try:
        with database.read() as conn:
            if not inspect(conn).has_table("principals"):
                return None
            rows = store.list_principals(conn)
    except (TiergateError, SQLAlchemyError, OSError):
        return None
    finally:
        if database is not engine._db:
            database.dispose()
    return {row["id"]: row for row in rows} or None


def member_problems(engine: Engine) -> list[Problem]:
    """Members of roles that are not registered (or are disabled) principals, once a server is in use."""
    roles = engine.draft_definitions.roles  # the files `check` reads: no database needed to know them
    if roles is None or not any(role.members for role in roles.roles.values()):
        return []
    principals = _principals(engine)
    if principals is None:
        return []
    from tiergate.definitions.yamlfile import load_yaml

    try:
        document: Any = load_yaml(engine.home.roles_path)
    except TiergateError:
        document = None
    problems = []
    for role_id, role in roles.roles.items():
        for index, member in enumerate(role.members):
            ptr = f"/roles/{role_id}/members/{index}"
            line = document.line_of(ptr) if document is not None else 1
            row = principals.get(member)
            if row is None:
                problems.append(Problem(ROLES_FILE, line, f"member '{member}' of role '{role_id}' is not a registered "
                                        "principal, and a server is in use: it cannot come through the server's "
                                        f"doors. Register it (`tiergate principals add {member} --name ...`) or "
                                        "remove it from the role.", pointer=ptr))
            elif row.get("disabled_at") is not None:
                problems.append(Problem(ROLES_FILE, line, f"member '{member}' of role '{role_id}' is a disabled "
                                        "principal: it cannot come through the server's doors. Remove it from the "
                                        "role, or register it again under a new id.", severity="warning",
                                        pointer=ptr))
    return problems
