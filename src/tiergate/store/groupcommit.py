"""SQLite's one writer, shared by a process's threads: several write transactions committed as one.

SQLite lets one connection write at a time, and a durable commit waits for the disk. When
several threads of one process (the server's) want to write at once, the thread whose turn it
is does not commit alone: it leaves the transaction open and hands the connection to the next
waiting thread, whose writes go into the same transaction inside a savepoint; the last of them
commits all at once (group commit). So a burst of N steps costs one ``BEGIN IMMEDIATE``, one
commit and one wait for the disk instead of N, and each thread's turn is a savepoint instead of
a connection taken from the pool, a transaction and a commit.

What each writer sees is what it saw when it had a transaction of its own:

- its writes run alone, one writer after another, on the database as the writers before it
  left it (they run in the order they got their turn, as with one transaction each);
- ``write`` returns only after the commit that holds its writes is on disk, and raises if that
  commit failed (nothing of the group is then recorded: SQLite's commit is all or nothing);
- a writer whose own work raises is rolled back to its savepoint, which leaves the others'
  writes in the group as they were, and its error is raised to it alone (after the group's
  commit, so that reading the database again then sees what the writers before it wrote);
- a writer that finds nobody waiting commits at once: one writer alone waits for nobody.

A group takes at most ``GROUP_LIMIT`` writers. A non-durable write (``durable=False``) takes a
turn of its own, committed at once with ``synchronous=NORMAL`` as before, and nobody joins it.
A write started inside another one in the same thread has its own connection and transaction,
as before (SQLite then makes it wait for the outer one's lock). Other processes wait for the
file's lock through SQLite's busy timeout, as before.
"""

from __future__ import annotations

import threading
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, Callable, Iterator

if TYPE_CHECKING:
    from sqlalchemy import Connection

#: Writers committed together at most (each holds a step's answer until the commit).
GROUP_LIMIT = 32


class _Group:
    """One open write transaction and the writers in it."""

    __slots__ = ("connection", "opened", "transaction", "members", "joinable", "done", "failed")

    def __init__(self, connection: Any, opened: Any, transaction: Any, joinable: bool):
        self.connection, self.opened, self.transaction = connection, opened, transaction
        self.members = 0
        self.joinable = joinable
        self.done = False
        #: Why the group's writes are not recorded: the error and whether it came while committing.
        self.failed: tuple[BaseException, bool] | None = None


class GroupCommit:
    """The writers of one SQLite database in this process (``Database.write`` on SQLite).

    ``begin(durable)`` opens a write transaction and gives ``(opened, connection, transaction)``:
    a context manager to leave once the transaction ends, the SQLAlchemy connection and its
    transaction. ``failure(exc, committing)`` says a failure of the database (a driver's error,
    or anything that broke a group) in the error tree's words; it is called once per writer told.
    """

    def __init__(self, begin: Callable[[bool], tuple[Any, "Connection", Any]],
                 failure: Callable[[BaseException, bool], BaseException]):
        self._begin, self._failure = begin, failure
        self._mutex = threading.Lock()
        self._turn = threading.Condition(self._mutex)  # the connection is free
        self._done = threading.Condition(self._mutex)  # a group was committed (or failed)
        self._busy = False  # a writer (or the committer) has the connection
        self._waiting = 0   # writers waiting for their turn
        self._group: _Group | None = None
        self._local = threading.local()

    @property
    def waiting(self) -> int:
        """Writers waiting for their turn now."""
        with self._mutex:
            return self._waiting

    def inside(self) -> bool:
        """Whether this thread is writing in a group now (a write inside it needs a transaction of its own)."""
        return getattr(self._local, "inside", False)

    @contextmanager
    def write(self, durable: bool = True) -> Iterator["Connection"]:
        with self._mutex:
            self._waiting += 1
            while self._busy:
                self._turn.wait()
            self._waiting -= 1
            self._busy = True
            group, self._group = self._group, None  # a non-durable write in a durable group: more than asked
        first = group is None
        if group is None:
            try:
                opened, connection, transaction = self._begin(durable)
            except BaseException:
                self._hand_on(None)
                raise
            group = _Group(connection, opened, transaction, joinable=durable)
        own_error: BaseException | None = None
        self._local.inside = True
        try:
            if not first:
                self._driver(group).execute("SAVEPOINT tiergate_writer")
            yield group.connection
        except BaseException as exc:  # noqa: BLE001 - undone here, raised to this writer below
            own_error = exc
        finally:
            self._local.inside = False
        if own_error is None and not first:
            try:
                self._driver(group).execute("RELEASE SAVEPOINT tiergate_writer")
            except BaseException as exc:  # noqa: BLE001
                own_error = exc
        if own_error is not None:
            if first:  # nobody else is in the transaction yet: roll it back whole
                self._close(group, commit=False)
                raise self._error(own_error)
            if not self._undo(group):  # the connection broke: the others' writes are lost with it
                group.failed = (own_error, False)
        group.members += 1
        with self._mutex:
            more = self._waiting > 0 and group.joinable and group.failed is None and group.members < GROUP_LIMIT
            if more:  # the next writer goes on in this transaction; this one waits for its commit
                self._group = group
                self._busy = False
                self._turn.notify()
                while not group.done:
                    self._done.wait()
        if not more:
            self._close(group, commit=group.failed is None)
        if own_error is not None:
            raise self._error(own_error)
        if group.failed is not None:
            raise self._failure(*group.failed)

    def _close(self, group: _Group, *, commit: bool) -> None:
        """Commit (or roll back) ``group``'s transaction, return its connection, tell its writers."""
        try:
            try:
                if commit:
                    try:
                        group.transaction.commit()
                    except BaseException:
                        self._roll_back(group)  # a failed COMMIT may leave SQLite's transaction open
                        raise
                else:
                    self._roll_back(group)
            finally:
                group.opened.__exit__(None, None, None)
        except BaseException as exc:  # noqa: BLE001 - every writer of the group is told
            group.failed = group.failed or (exc, commit)
        self._hand_on(group)

    def _roll_back(self, group: _Group) -> None:
        try:
            group.transaction.rollback()
        finally:
            driver = None if group.connection.invalidated else self._driver(group)
            if driver is not None and driver.in_transaction:
                driver.execute("ROLLBACK")

    def _hand_on(self, group: _Group | None) -> None:
        with self._mutex:
            if group is not None:
                group.done = True
                self._done.notify_all()
            self._busy = False
            self._turn.notify()

    def _undo(self, group: _Group) -> bool:
        """Roll back the last writer's savepoint; False if that failed (the group cannot commit)."""
        if group.connection.invalidated:
            return False
        try:
            driver = self._driver(group)
            driver.execute("ROLLBACK TO SAVEPOINT tiergate_writer")
            driver.execute("RELEASE SAVEPOINT tiergate_writer")
        except BaseException:  # noqa: BLE001
            return False
        return True

    def _error(self, exc: BaseException) -> BaseException:
        """A writer's own error: a driver's in the error tree's words, anything else as it was."""
        from sqlalchemy.exc import DBAPIError

        return self._failure(exc, False) if isinstance(exc, DBAPIError) else exc

    @staticmethod
    def _driver(group: _Group) -> Any:
        return group.connection.connection.driver_connection
