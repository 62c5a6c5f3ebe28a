"""PostgreSQL connections that break: at rest in the pool, before a commit, and during one.

The breaks are real: a TCP relay (``Relay``) sits between tiergate and the test server and
drops a connection, or holds back the server's hang-up, at a chosen point in the protocol.
"""

from __future__ import annotations

import json
import select
import socket
import threading
from typing import Any

import pytest
import sqlalchemy as sa

from support import BACKEND, HomeBuilder, events

pytestmark = pytest.mark.skipif(BACKEND != "postgresql", reason="connections to a server: PostgreSQL")

EVIDENCE = {"summary": "Printer on floor 3 is down", "severity": "S2"}
SAVE_STATEMENT = b"WITH moved AS (UPDATE runs"  # how a step's change begins (tiergate.log.write)
COMMIT = b"Q\x00\x00\x00\x0bCOMMIT\x00"  # the simple-protocol message psycopg commits with


class Relay:
    """A TCP relay to a PostgreSQL server that can break the connections passing through it.

    ``cut(*patterns, deliver=..., times=1)`` arms a cut: once the client has sent chunks
    containing the patterns in turn, the last one is either dropped with the connection
    (``deliver=False``: the server never sees it) or passed on, and then the server's answer is
    dropped with the connection (``deliver=True``); ``times`` cuts are made so. With
    ``hold_hang_ups``, a connection the server closes stays open on the client's side until the
    client sends again: the client has the server's goodbye (a FATAL message) but not yet its end
    of file, as on a loaded machine between the two.
    """

    def __init__(self, url: str, *, hold_hang_ups: bool = False):
        self.upstream = sa.make_url(url)
        self.hold_hang_ups = hold_hang_ups
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.url = self.upstream.set(host="127.0.0.1", port=self.listener.getsockname()[1]) \
            .render_as_string(hide_password=False)
        self.server_hung_up = threading.Event()
        self.cut_made = threading.Event()
        self._plan: tuple[tuple[bytes, ...], bool, int] | None = None
        self._pending: list[bytes] = []
        self._lock = threading.Lock()
        self._closing = threading.Event()
        self._sockets: list[socket.socket] = [self.listener]
        threading.Thread(target=self._accept, daemon=True).start()

    def cut(self, *patterns: bytes, deliver: bool, times: int = 1) -> None:
        with self._lock:
            self._plan, self._pending = (patterns, deliver, times), list(patterns)

    def close(self) -> None:
        self._closing.set()
        _hang_up(*self._sockets)

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:  # closed by close()
                return
            server = socket.create_connection((self.upstream.host or "127.0.0.1", self.upstream.port or 5432))
            self._sockets += [client, server]
            link = {"gone": threading.Event(), "let_go": threading.Event(), "swallow": threading.Event()}
            threading.Thread(target=self._from_client, args=(client, server, link), daemon=True).start()
            threading.Thread(target=self._from_server, args=(server, client, link), daemon=True).start()

    def _cut_due(self, chunk: bytes) -> bool | None:
        """None: pass the chunk on; otherwise the cut to make now, and whether it delivers."""
        with self._lock:
            if self._plan is None or self._pending[0] not in chunk:
                return None
            self._pending.pop(0)
            if self._pending:
                return None
            patterns, deliver, times = self._plan
            self._plan, self._pending = ((patterns, deliver, times - 1), list(patterns)) if times > 1 else (None, [])
            return deliver

    def _from_client(self, client: socket.socket, server: socket.socket, link: dict[str, threading.Event]) -> None:
        try:
            while (chunk := client.recv(65536)) and not link["gone"].is_set():
                deliver = self._cut_due(chunk)
                if deliver is False:
                    self.cut_made.set()
                    break
                if deliver:
                    link["swallow"].set()
                server.sendall(chunk)
        except OSError:
            pass
        link["let_go"].set()
        _hang_up(client, server)

    def _from_server(self, server: socket.socket, client: socket.socket, link: dict[str, threading.Event]) -> None:
        try:
            while chunk := server.recv(65536):
                if link["swallow"].is_set():  # the answer to the delivered message: lost with the connection
                    self.cut_made.set()
                    break
                client.sendall(chunk)
        except OSError:
            pass
        link["gone"].set()
        self.server_hung_up.set()
        while self.hold_hang_ups and not (link["let_go"].wait(0.1) or self._closing.is_set()):
            pass
        _hang_up(client, server)


def _hang_up(*sockets: socket.socket) -> None:
    """Close sockets for real: shutdown() ends a recv() or accept() another thread is blocked in."""
    for sock in sockets:
        try:
            sock.shutdown(socket.SHUT_RDWR)
        except OSError:  # not connected, or already shut
            pass
        sock.close()


@pytest.fixture
def relay(db_url: str) -> Any:
    opened: list[Relay] = []

    def make(**options: Any) -> Relay:
        opened.append(Relay(db_url, **options))
        return opened[-1]

    yield make
    for one in opened:
        one.close()


def _completions(engine: Any, run_id: str) -> list[tuple[str | None, str, str]]:
    return [e for e in events(engine, run_id) if e[1] == "step_completed"]


def test_a_goodbye_whose_hang_up_has_not_arrived_is_enough(demo_home: HomeBuilder, make_engine: Any,
                                                          relay: Any, db_url: str) -> None:
    """The pooled connection has read the server's FATAL message but not its end of file."""
    link = relay(hold_hang_ups=True)
    engine = make_engine(demo_home, database_url=link.url)
    run = engine.start("demo", {"ticket_id": "T-61"}, actor="agent:bot")
    with engine.db.read() as conn:
        pid = conn.exec_driver_sql("SELECT pg_backend_pid()").scalar()
        pooled = conn.connection.dbapi_connection
    admin = sa.create_engine(db_url, poolclass=sa.pool.NullPool)
    with admin.connect() as conn:
        assert conn.exec_driver_sql(f"SELECT pg_terminate_backend({pid})").scalar() is True
    admin.dispose()
    assert link.server_hung_up.wait(30)  # its goodbye was passed on; the hang-up is held back
    assert select.select([pooled.pgconn.socket], [], [], 30)[0]
    info = engine.complete(run.id, "gather", EVIDENCE, actor="agent:bot")
    assert info.steps[0].state == "done"
    with engine.db.read() as conn:
        assert conn.exec_driver_sql("SELECT pg_backend_pid()").scalar() != pid
    assert engine.verify_log()["ok"] is True


@pytest.mark.parametrize("remembered", [True, False], ids=["run-remembered", "run-read"])
def test_a_step_whose_connection_broke_before_the_commit_is_made_again(demo_home: HomeBuilder, make_engine: Any,
                                                                       relay: Any, remembered: bool) -> None:
    """Nothing reached the server's commit: the engine makes the attempt once more, on a new connection.

    Whether the engine started from the run it remembers (store.RecentRuns) or read it first.
    """
    link = relay()
    engine = make_engine(demo_home, database_url=link.url)
    run = engine.start("demo", {"ticket_id": "T-62"}, actor="agent:bot")
    if not remembered:
        engine = make_engine(demo_home, database_url=link.url)
    link.cut(SAVE_STATEMENT, deliver=False)
    info = engine.complete(run.id, "gather", EVIDENCE, actor="agent:bot")
    assert link.cut_made.is_set()
    assert info.steps[0].state == "done"
    assert _completions(engine, run.id) == [("gather", "step_completed", "agent:bot")]
    assert engine.verify_log()["ok"] is True


def test_a_connection_broken_twice_before_the_commit_is_an_error_that_recorded_nothing(
        demo_home: HomeBuilder, make_engine: Any, relay: Any) -> None:
    link = relay()
    engine = make_engine(demo_home, database_url=link.url)
    run = engine.start("demo", {"ticket_id": "T-63"}, actor="agent:bot")
    before = events(engine, run.id)
    link.cut(SAVE_STATEMENT, deliver=False, times=2)  # the attempt, and the engine's one more
    with pytest.raises(Exception) as err:
        engine.complete(run.id, "gather", EVIDENCE, actor="agent:bot")
    assert getattr(err.value, "code", None) == "connection_lost"
    assert err.value.details["committed"] is False  # type: ignore[attr-defined]
    assert "nothing was recorded" in str(err.value)
    assert events(engine, run.id) == before
    assert engine.status(run.id).steps[0].state == "ready"


def test_a_commit_whose_answer_was_lost_says_so_from_the_cli(demo_home: HomeBuilder, make_engine: Any,
                                                             relay: Any, cli: Any) -> None:
    """The server got the commit, the client never heard back: the error says the change may be recorded."""
    link = relay()
    engine = make_engine(demo_home, database_url=link.url)
    run = engine.start("demo", {"ticket_id": "T-64"}, actor="agent:bot")
    link.cut(SAVE_STATEMENT, COMMIT, deliver=True)
    result = cli("complete", run.id, "gather", "--evidence", json.dumps(EVIDENCE), "--actor", "agent:bot",
                 "--json", home=demo_home, env={"TIERGATE_DATABASE_URL": link.url})
    assert link.cut_made.is_set()
    assert result.returncode == 1, result.stderr
    error = json.loads(result.stdout)["error"]
    assert error["code"] == "connection_lost" and error["details"] == {"committed": None}
    assert "may or may not have been recorded" in error["message"] and "Read the run back" in error["message"]
    # Here the server had committed it: reading back shows the step done, once.
    assert engine.status(run.id).steps[0].state == "done"
    assert _completions(engine, run.id) == [("gather", "step_completed", "agent:bot")]
    assert engine.verify_log()["ok"] is True
