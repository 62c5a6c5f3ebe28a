"""`tiergate serve`: one process that alone holds the database, and its doors over HTTP.

    app = build_app(Engine(home="."))            # a Starlette (ASGI) application
    serve(engine, host="127.0.0.1", port=8470)   # the same, run by uvicorn

Routes:

- ``/mcp``: MCP over streamable HTTP (JSON answers; a session kept for a client that opens one,
  ``tiergate.server.mcpsessions``; a tool call in one hop, ``tiergate.server.mcphot``), the same
  tools as ``tiergate mcp``, each call as the principal of its bearer token;
- ``/api/...``: the JSON API (``tiergate.server.api``), described at ``/api/openapi.json``;
- ``/metrics``: Prometheus' text format (``tiergate.server.prometheus``);
- ``/healthz``: for probes;
- everything else: the people's web pages (``tiergate.web``), signed in with a password and a
  session cookie, not a token.

Only ``/healthz`` and ``/api/openapi.json`` answer without a token (``tiergate.server.doors``);
the web pages check their own sessions.
Every door calls ``tiergate.operations``; one engine serves them all, up to ``ENGINE_CALLS`` calls at once.
With ``workers`` over 1, ``serve`` runs that many such processes on one socket (``tiergate.supervisor``).

"""

from __future__ import annotations

import os
import threading
from typing import Any, Callable

from starlette.requests import Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import JSONResponse, PlainTextResponse
from starlette.routing import Route

from tiergate import __version__, doorlog, incidents
from tiergate.credentials import Credentials
from tiergate.engine import Engine
from tiergate.freshness import Freshness
from tiergate.envelope import failure, success
from tiergate.limits import limit
from tiergate.mcpserver import build_server
from tiergate.operations import Operations
from tiergate import web
from tiergate.server import api, mcphot, mcpsessions, prometheus
from tiergate.server.doors import Doors
from tiergate.server.lastresort import HTTPException, LastResort, no_route
from tiergate.tracing import RequestSpans

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8470
#: A request body may hold the largest evidence and the envelope around it (``message_bytes``).
MAX_BODY_BYTES = limit("message_bytes")
#: Engine calls served at once, whichever door they came through (the database pool holds 10).
ENGINE_CALLS = 8


def build_app(engine: Engine, *, host: str = DEFAULT_HOST, max_body: int = MAX_BODY_BYTES) -> RequestSpans:
    """The server's ASGI application over ``engine``."""
    # Engine calls run in worker threads, several at once (the engine, its caches and its database
    # pool are shared between threads); at most the database pool's size, so none waits for a connection.
    lock = threading.BoundedSemaphore(ENGINE_CALLS)
    operations = Operations(engine)

    # Every door sees an edited definition file or a new deployment within a second, as a new CLI
    # command would (runs in progress stay on their pinned version).
    fresh = Freshness(engine)

    def run_locked(handler: Callable[..., Any], *args: Any) -> Any:
        with lock:
            fresh.check()
            return handler(*args)

    sessions, hot_mcp = (str(engine.settings.get(name, True)).strip().lower() not in ("0", "false", "no", "off")
                         for name in ("mcp_sessions", "mcp_hot_path"))
    mcp = build_server(engine, lock=lock, fresh=fresh)
    app = mcpsessions.mount(mcp, max_body=max_body, host=host, sessions=sessions)

    async def healthz(request: Request) -> JSONResponse:
        try:
            engine.db.check_file()  # reachable, at the current schema, and (SQLite) the file it opened
        except Exception as err:  # noqa: BLE001 - a probe reports any failure as unhealthy
            code = getattr(err, "code", "database_error")
            return JSONResponse(failure(code, getattr(err, "message", "the database is not ready.")), 503)
        # The process that answered: with `serve --workers N`, which of the N it was.
        return JSONResponse(success({"status": "ok", "version": __version__, "pid": os.getpid()}))

    async def metrics(request: Request) -> PlainTextResponse:
        body = await run_in_threadpool(run_locked, prometheus.exposition, engine, engine.clock())
        return PlainTextResponse(body, media_type=prometheus.CONTENT_TYPE)

    def refused(refused: Any, door: str, caller: Any) -> None:  # a body no parser reads (tiergate.doorlog)
        principal = getattr(caller, "principal", None)
        code = str(refused.rpc_code) if door == "mcp" else {"message_bytes": "body_too_large", "message_depth":
                                                             "limit_exceeded"}.get(refused.problem, "invalid_json")
        run_locked(lambda: doorlog.record(engine, door=door, attempt="message", code=code, problem=refused.problem,
                                          facts=refused.facts, actor=principal,
                                          credential=getattr(caller, "door", None)))

    app.router.routes.extend([Route("/healthz", healthz, methods=["GET"]), Route("/metrics", metrics, methods=["GET"]),
                              *api.routes(operations, max_body=max_body, run_locked=run_locked, on_refused=refused),
                              *web.routes(engine, operations, run_locked, max_body=max_body)])

    # Spans outermost, so refused requests (401, 413) are traced too; a no-op without OpenTelemetry.
    credentials = Credentials(engine)
    api_hot = api.HotPath(operations, credentials, run_locked=run_locked, on_refused=refused)
    mcp_hot = mcphot.McpHotPath(mcp, credentials, sessions=app.state.mcp_sessions,
                                security=mcp.session_manager.security_settings, enabled=hot_mcp)

    async def hot(scope: Any, receive: Any, send: Any) -> bool:
        return await api_hot(scope, receive, send) or await mcp_hot(scope, receive, send)

    # An exception no door caught: an incident, answered in the request's kind (tiergate.server.lastresort);
    # inside the Starlette app too, where its own catch would otherwise answer a bare 500 first.
    app.add_middleware(LastResort, engine=engine)
    app.exception_handlers[HTTPException] = no_route  # no route at the path, or not with the method: 404, 405
    return RequestSpans(LastResort(Doors(app, credentials, max_body, on_refused=refused, hot=hot), engine))


def serve(engine: Engine, *, host: str = DEFAULT_HOST, port: int = DEFAULT_PORT, workers: int = 1) -> None:
    """Serve until interrupted (uvicorn; Ctrl-C or SIGTERM stops it), with housekeeping beside it.

    ``workers`` over 1: that many processes accept on one socket, each with its own engine, under
    uvicorn's supervisor in this process (``tiergate.supervisor``); housekeeping still runs
    here, once. ``engine`` then serves no requests: its connections are closed.
    """
    import uvicorn

    stop = threading.Event()
    keeper = threading.Thread(target=housekeeping, args=(engine.home.root, engine.database_url, stop),
                              name="tiergate-housekeeping", daemon=True)
    keeper.start()
    try:
        if workers > 1:
            from tiergate.supervisor import WorkerApp, supervise

            engine.close()
            supervise(WorkerApp(str(engine.home.root), engine.database_url, host), host=host, port=port,
                      workers=workers)
        else:
            uvicorn.run(build_app(engine, host=host), host=host, port=port, log_level="warning", access_log=False,
                        server_header=False)
    finally:
        stop.set()
        keeper.join(timeout=30)


def housekeeping(home: Any, database_url: str, stop: threading.Event) -> None:
    """What `tiergate worker` does, for a server without a worker: fire the Tier 1 timers that are
    due, fold the log summary (and the log's Merkle tree), write a checkpoint when one is due (a log
    key is set), and send the webhooks' deliveries that are due. Every ``housekeeping_seconds``, on
    its own engine (so requests never wait for it); a failure is reported on standard error and
    tried again next time. Timers fire as `tiergate worker` fires them (each due run claimed in its
    own transaction), so a worker beside the server is harmless: no timer fires twice.
    """
    import sys

    from tiergate import checkpoints, webhooks, worker
    from tiergate.errors import TiergateError
    from tiergate.metrics import summary

    keeper = Engine(home=home, database_url=database_url)
    schedule = checkpoints.Schedule()
    try:
        seconds = max(0.1, float(keeper.settings.get("housekeeping_seconds") or 15))
    except (TypeError, ValueError):
        seconds = 15.0
    tasks: tuple[tuple[str, Callable[[], Any]], ...] = (
        ("timers", lambda: worker.run_pass(keeper)), ("log summary", lambda: summary.fold(keeper.db)),
        ("checkpoint", lambda: checkpoints.maybe_write(keeper, schedule)),
        ("webhooks", lambda: webhooks.run_pass(keeper)))
    try:
        while not stop.wait(seconds):
            for name, task in tasks:
                try:
                    task()
                except TiergateError as err:  # the database away, a bad key or webhook table: said, tried again
                    print(f"tiergate serve: housekeeping: {err.code}: {err.message}", file=sys.stderr, flush=True)
                except Exception as exc:  # noqa: BLE001 - an incident, and the other tasks and the next pass go on
                    incidents.report(exc, door="housekeeping", what=name)
    finally:
        keeper.close()
