"""Pooled connections: a SQLite file switched to write-ahead logging, and a pooled PostgreSQL
connection found closed by its server without a round trip (``tiergate.store.db.Database.engine``
configures and checks each connection it opens with these).
"""

from __future__ import annotations

import select
import weakref
from typing import Any


#: Pooled PostgreSQL connections whose server said it is closing them (a FATAL or PANIC message
#: while they were idle). The hang-up that follows may reach the socket a moment later.
_TOLD_GOODBYE: weakref.WeakSet[Any] = weakref.WeakSet()


def _enter_wal(cursor: Any, patience: float = 60.0) -> None:
    """Switch a SQLite database to write-ahead logging, waiting for other processes doing the same.

    On a new file, two processes switching at once can each hold a read lock the other must wait
    out; SQLite then answers "database is locked" at once, without calling the busy handler (it
    would wait forever). Only one of them needs to succeed: the other finds WAL already set.
    """
    import sqlite3
    import time

    deadline = time.monotonic() + patience
    pause = 0.002
    while True:
        try:
            cursor.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() + pause > deadline:
                raise
        time.sleep(pause)
        pause = min(pause * 2, 0.1)


def _listen_for_goodbye(dbapi_connection: Any) -> None:
    """Note the server's last words on this connection (see ``_server_hung_up``)."""
    connection = weakref.ref(dbapi_connection)

    def on_notice(diagnostic: Any) -> None:
        severity = diagnostic.severity_nonlocalized or diagnostic.severity
        alive = connection()
        if severity in ("FATAL", "PANIC") and alive is not None:
            _TOLD_GOODBYE.add(alive)

    dbapi_connection.add_notice_handler(on_notice)


def _server_hung_up(dbapi_connection: Any) -> bool:
    """Whether the PostgreSQL server closed this idle connection, found without a round trip.

    An idle connection has nothing to read unless the server sent something unasked: mostly
    its goodbye (a FATAL message, then end of file) on shutdown or when its backend was
    terminated. libpq reads what is there (which copes with TLS records too) and parses it: an
    error on an idle connection goes to the notice handlers, where ``_listen_for_goodbye`` notes
    it, so the connection counts as gone even while the end of file is still on its way.
    Reading the end of file fails, which also counts. Anything else (a notice, a parameter
    change) is read and harmless; a connection that keeps sending is treated as gone, which
    costs only a reconnect.
    """
    if dbapi_connection.closed or dbapi_connection.broken:
        return True
    from psycopg import OperationalError as DriverOperationalError
    from psycopg.pq import ConnStatus

    pgconn = dbapi_connection.pgconn
    if not _readable(pgconn.socket):  # nothing sent unasked: the usual case, and the cheap one
        return pgconn.status != ConnStatus.OK
    try:
        for _ in range(8):
            pgconn.consume_input()
            if not _readable(pgconn.socket):
                pgconn.is_busy()  # parses what was read; an error goes to the notice handlers
                return dbapi_connection in _TOLD_GOODBYE or pgconn.status != ConnStatus.OK
    except DriverOperationalError:  # end of file: the server hung up
        return True
    return True


def _readable(socket: int) -> bool:
    if hasattr(select, "poll"):  # no limit on descriptor numbers, unlike select()
        poller = select.poll()
        poller.register(socket, select.POLLIN)
        return bool(poller.poll(0))
    return bool(select.select([socket], [], [], 0)[0])  # Windows: select() takes sockets
