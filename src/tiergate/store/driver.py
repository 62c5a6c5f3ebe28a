"""The hot path's statements on the DBAPI cursor of a transaction's connection, spelled once per
dialect (``DriverSQL``), with the JSON text and the times they bind (see ``tiergate.store.db``).
Re-exported by ``tiergate.store.db``.
"""

from __future__ import annotations

from contextlib import contextmanager
from datetime import datetime
from functools import lru_cache
from typing import Any, Iterator

from sqlalchemy import Connection
from sqlalchemy.exc import DBAPIError

from tiergate import jsontext


class DriverSQL:
    """One hot-path statement spelled for each dialect, written once with placeholders:

    ``{p}`` a parameter, ``{json}`` a JSON parameter (JSON text: ``encode_json``, or the log's
    canonical JSON), ``{float}`` a float parameter that may be NULL in every row (PostgreSQL
    cannot infer its type then).
    """

    _SPELLING = {"sqlite": {"p": "?", "json": "?", "float": "?"},
                 "postgresql": {"p": "%s", "json": "CAST(%s AS JSON)", "float": "CAST(%s AS DOUBLE PRECISION)"}}

    def __init__(self, template: str):
        self.template = template
        self._by_dialect = {name: template.format(**spelling) for name, spelling in self._SPELLING.items()}

    def __call__(self, dialect: str) -> str:
        return self._by_dialect[dialect]


def encode_json(value: Any) -> str:
    """A JSON column's text, spelled as SQLAlchemy's JSON type writes it (json.dumps); the text of a
    ``tiergate.jsontext.Encoded`` inside is reused, not made again. Both engines write every JSON
    column with it (``json_serializer``), so a value already encoded is bound as an ``Encoded``."""
    return jsontext.dumps(value)


# A step binds the same moment several times (the run's update, each log entry).
@lru_cache(maxsize=64)
def bind_time(dialect: str, value: datetime) -> Any:
    """A UTC datetime as a DateTime(timezone=True) column takes it: SQLite stores SQLAlchemy's
    text form (naive, UTC), PostgreSQL a timestamptz."""
    if dialect == "sqlite":
        return value.replace(tzinfo=None).isoformat(" ", "microseconds")
    return value


@contextmanager
def driver_cursor(conn: Connection) -> Iterator[Any]:
    """A DBAPI cursor in ``conn``'s transaction, for statements from ``DriverSQL``.

    Driver errors come out as SQLAlchemy's, and a lost connection is invalidated so that it
    does not go back to the pool, as with ``conn.execute``.
    """
    dbapi_connection = conn.connection.dbapi_connection
    cursor = dbapi_connection.cursor()  # type: ignore[union-attr]
    try:
        yield cursor
    except conn.dialect.loaded_dbapi.Error as err:
        lost = conn.dialect.is_disconnect(err, dbapi_connection, cursor)  # type: ignore[arg-type]
        if lost:
            conn.invalidate(err)
        raise DBAPIError.instance(None, None, err, conn.dialect.loaded_dbapi.Error, connection_invalidated=lost,
                                  dialect=conn.dialect) from err
    finally:
        if not conn.invalidated:  # invalidating closed the connection, and with it the cursor
            cursor.close()
