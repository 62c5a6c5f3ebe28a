"""SQLite's writers in one process take turns, and those waiting at once are committed together
(``tiergate.store.groupcommit``): each writer's work stays its own, and nobody is answered before
the commit that holds its writes. Real threads on a real SQLite file."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any, Callable

import pytest
from sqlalchemy import text

from tiergate.errors import DatabaseError
from tiergate.store.db import Database


@pytest.fixture
def database(tmp_path: Path) -> Any:
    db = Database(f"sqlite:///{(tmp_path / 'group.db').as_posix()}")
    with db.write() as conn:
        conn.exec_driver_sql("CREATE TABLE parent (id INTEGER PRIMARY KEY)")
        conn.exec_driver_sql("CREATE TABLE child (id INTEGER PRIMARY KEY, parent INTEGER REFERENCES parent(id) "
                             "DEFERRABLE INITIALLY DEFERRED)")
    yield db
    db.dispose()


def rows(db: Database, table: str) -> list[int]:
    with db.read() as conn:
        return [row[0] for row in conn.execute(text(f"SELECT id FROM {table} ORDER BY id"))]


def until(condition: Callable[[], bool]) -> None:
    event = threading.Event()
    while not condition():
        event.wait(0.001)


def writers_in_turn(db: Database, first: Callable[[Any], None], *later: Callable[[Any], None]) -> list[Any]:
    """``first`` writes; while it is in its transaction each of ``later`` starts writing (in this
    order) and waits for its turn; then ``first`` ends. What each writer raised (None: nothing)."""
    outcomes: list[Any] = [None] * (1 + len(later))
    inside, go = threading.Event(), threading.Event()

    def write(i: int, work: Callable[[Any], None]) -> None:
        try:
            with db.write() as conn:
                work(conn)
                if i == 0:
                    inside.set()
                    go.wait(60)
        except Exception as err:  # noqa: BLE001 - what the writer was told
            outcomes[i] = err

    threads = [threading.Thread(target=write, args=(0, first))]
    threads[0].start()
    inside.wait(60)
    for i, work in enumerate(later, start=1):
        until(lambda before=i - 1: db._writers.waiting == before)  # type: ignore[union-attr, misc]
        threads.append(threading.Thread(target=write, args=(i, work)))
        threads[-1].start()
    until(lambda: db._writers.waiting == len(later))  # type: ignore[union-attr]
    go.set()
    for thread in threads:
        thread.join(60)
    return outcomes


def test_a_writer_that_fails_leaves_the_others_of_its_group_committed(database: Database) -> None:
    seen: dict[str, Any] = {}

    def third(conn: Any) -> None:
        conn.exec_driver_sql("INSERT INTO parent (id) VALUES (3)")
        # In the first writer's transaction (its row is there), which nobody else sees yet.
        seen["inside"] = [r[0] for r in conn.exec_driver_sql("SELECT id FROM parent ORDER BY id")]
        seen["outside"] = rows(database, "parent")

    def second(conn: Any) -> None:
        conn.exec_driver_sql("INSERT INTO parent (id) VALUES (2)")
        raise ValueError("the second writer's own failure")

    outcomes = writers_in_turn(database, lambda conn: conn.exec_driver_sql("INSERT INTO parent (id) VALUES (1)"),
                               second, third)
    assert outcomes[0] is None and outcomes[2] is None
    assert isinstance(outcomes[1], ValueError)
    assert seen == {"inside": [1, 3], "outside": []}
    assert rows(database, "parent") == [1, 3]


def test_a_writer_is_answered_only_after_the_commit_that_holds_its_writes(database: Database) -> None:
    seen: dict[int, list[int]] = {}  # each writer's read of the table, on another connection, once write() returned

    def later(n: int) -> None:
        with database.write() as conn:
            conn.exec_driver_sql(f"INSERT INTO parent (id) VALUES ({n})")
        seen[n] = rows(database, "parent")

    threads = [threading.Thread(target=later, args=(n,)) for n in (2, 3, 4)]
    with database.write() as conn:  # holds its turn until three more writers wait for theirs
        conn.exec_driver_sql("INSERT INTO parent (id) VALUES (1)")
        for thread in threads:
            thread.start()
        until(lambda: database._writers.waiting == 3)  # type: ignore[union-attr]
    seen[1] = rows(database, "parent")
    for thread in threads:
        thread.join(60)
    assert sorted(seen) == [1, 2, 3, 4]
    assert all(n in committed for n, committed in seen.items()), seen


def test_a_failed_commit_is_told_to_every_writer_of_the_group_and_records_nothing(database: Database) -> None:
    # A deferred foreign key fails only at the commit: the second writer's orphan breaks the group's commit.
    outcomes = writers_in_turn(database, lambda conn: conn.exec_driver_sql("INSERT INTO parent (id) VALUES (1)"),
                               lambda conn: conn.exec_driver_sql("INSERT INTO child (id, parent) VALUES (1, 99)"))
    assert all(isinstance(outcome, DatabaseError) for outcome in outcomes), outcomes
    assert "FOREIGN KEY" in outcomes[0].message and "FOREIGN KEY" in outcomes[1].message
    assert rows(database, "parent") == [] and rows(database, "child") == []
    with database.write() as conn:  # the writers' turns go on
        conn.exec_driver_sql("INSERT INTO parent (id) VALUES (7)")
    assert rows(database, "parent") == [7]


def test_a_write_inside_a_write_and_a_failing_first_writer(database: Database) -> None:
    with pytest.raises(ValueError), database.write() as conn:
        conn.exec_driver_sql("INSERT INTO parent (id) VALUES (1)")
        raise ValueError("rolled back whole")
    with database.write(durable=False) as conn:
        conn.exec_driver_sql("INSERT INTO parent (id) VALUES (2)")
    assert rows(database, "parent") == [2]
