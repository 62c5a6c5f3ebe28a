"""`tiergate serve --workers N`: N server processes accepting on one listening socket.

    supervise(WorkerApp(home, database_url, host), host=host, port=port, workers=2)

The supervisor binds the socket once and starts N worker processes on it with uvicorn's own
multi-process supervisor (``uvicorn.supervisors.Multiprocess``): each worker is a new Python
process (spawned, not forked: no database connection or thread is shared) that builds its own
`Engine` and application (``WorkerApp``) and accepts connections from the shared socket, so the
kernel spreads connections over the workers. One process is held to one core by the interpreter
lock; N processes use N.

The supervisor answers no requests. It restarts a worker that dies or stops answering its health
check (and says so on standard error), stops every worker on SIGINT or SIGTERM (each finishes the
requests it holds), and stops altogether if a worker cannot start (the database away or
outdated: a new worker would fail the same way). Housekeeping (timers, the log summary,
checkpoints, webhooks) runs beside the supervisor, once, never in the workers
(``tiergate.server.serve``).

This module imports little (the standard library, ``tiergate.errors``): a new worker unpickles
``WorkerApp`` before it starts answering the supervisor's health checks, and a worker that does
not answer within ``HEALTH_CHECK_SECONDS`` is killed and replaced. The server itself (Starlette,
the engine, SpiffWorkflow, ...) is imported when ``WorkerApp`` is called, with the checks answered.

Everything the workers must agree on lives in the database, read per request: tokens (a revoked
token fails at once in every worker), web sessions, sign-in failures and lock-outs, claims, and
runs (a worker's remembered run or kept workflow is used only if the run's row is still at the
version it was computed from: ``store.RecentRuns``, ``bpmn.kept``).
"""

from __future__ import annotations

import atexit
import os
import signal
import sys
import threading
import time
from dataclasses import dataclass
from typing import Any

from tiergate.errors import TiergateError, UsageError


#: How long a worker may take to answer the supervisor's health check before it is killed and
#: replaced (uvicorn's default is 5 s; a worker starting on a busy machine can take longer).
HEALTH_CHECK_SECONDS = 10


def _say(message: str) -> None:
    print(f"tiergate serve: {message}", file=sys.stderr, flush=True)


@dataclass(frozen=True)
class WorkerApp:
    """The application factory each worker process calls once at start (pickled to it by the supervisor)."""

    home: str
    database_url: str
    host: str

    def __call__(self) -> Any:
        from uvicorn.config import STARTUP_FAILURE

        from tiergate.engine import Engine
        from tiergate.server import build_app

        engine = Engine(home=self.home, database_url=self.database_url)
        try:
            _ = engine.db  # reachable and at the current schema, or this worker cannot serve
        except TiergateError as err:
            _say(f"worker {os.getpid()} cannot start: {err.code}: {err.message}")
            sys.exit(STARTUP_FAILURE)  # the supervisor then stops: another worker would fail the same way
        atexit.register(engine.close)
        threading.Thread(target=_stop_when_orphaned, args=(os.getppid(),), name="tiergate-orphan-watch",
                         daemon=True).start()
        return build_app(engine, host=self.host)


def _stop_when_orphaned(supervisor: int) -> None:
    """A worker whose supervisor is gone (killed with SIGKILL, which it cannot pass on) stops as on
    SIGTERM, finishing the requests it holds, instead of serving on without housekeeping."""
    while os.getppid() == supervisor:
        time.sleep(1)
    os.kill(os.getpid(), signal.SIGTERM)


def _supervisor_class() -> type:
    from uvicorn.config import STARTUP_FAILURE
    from uvicorn.supervisors.multiprocess import Multiprocess

    class Supervisor(Multiprocess):  # type: ignore[misc]
        """uvicorn's supervisor, telling on standard error which worker died and which replaced it."""

        failed = False

        def keep_subprocess_alive(self) -> None:
            before = [(process, process.process.is_alive()) for process in self.processes]
            super().keep_subprocess_alive()
            for index, (old, was_running) in enumerate(before):
                if old.exitcode is None:
                    continue
                if old.exitcode == STARTUP_FAILURE:
                    self.failed = True
                    _say(f"worker {old.pid} could not start; stopping the server.")
                    continue
                if was_running and old.exitcode == -signal.SIGKILL:  # alive, but silent: uvicorn killed it
                    how = f"did not answer the health check within {HEALTH_CHECK_SECONDS} s and was killed"
                else:
                    how = (f"was killed by {signal.Signals(-old.exitcode).name}" if old.exitcode < 0
                           else f"exited with code {old.exitcode}")
                new = self.processes[index]
                replaced = f"; started worker {new.pid} in its place" if new is not old else ""
                _say(f"worker {old.pid} {how}{replaced}.")

    return Supervisor


def supervise(app: WorkerApp, *, host: str, port: int, workers: int) -> None:
    """Run ``workers`` processes of ``app`` on one socket until SIGINT or SIGTERM (uvicorn's supervisor)."""
    from uvicorn import Config

    if workers < 2:
        raise UsageError(f"supervise() starts 2 or more workers, not {workers}; serve one process without it.",
                         code="usage")
    config = Config(app, factory=True, host=host, port=port, workers=workers, log_level="warning",
                    access_log=False, server_header=False, timeout_worker_healthcheck=HEALTH_CHECK_SECONDS)
    sock = config.bind_socket()  # once, here: every worker accepts on it
    supervisor = _supervisor_class()(config, sockets=[sock])
    try:
        supervisor.run()
    finally:
        sock.close()
    if supervisor.failed:
        raise TiergateError("a server worker could not start (its reason is above). Fix it, then start the "
                            "server again.", code="serve_failed")
