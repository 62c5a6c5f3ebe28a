"""`tiergate serve`: the HTTP server (MCP over HTTP, the JSON API, /healthz)."""

from __future__ import annotations

import os
from typing import Any

import click

from tiergate.cli.output import _fail, common_options
from tiergate.engine import Engine
from tiergate.errors import TiergateError, UsageError


def _workers_setting(value: Any) -> int:
    """The `workers` setting (tiergate.toml or TIERGATE_WORKERS): a whole number of 1 or more."""
    number = int(value) if isinstance(value, str) and value.strip().isdigit() else value
    if isinstance(number, int) and not isinstance(number, bool) and number >= 1:
        return number
    where = "TIERGATE_WORKERS" if os.environ.get("TIERGATE_WORKERS") else "workers in tiergate.toml"
    raise UsageError(f"{where} is {value!r}, not a whole number of 1 or more. Set it to how many server processes "
                     "to run (one per core is a good start), or remove it for one.", code="config_invalid",
                     details={"setting": "workers", "value": str(value)})


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8470, show_default=True, type=click.IntRange(1, 65535), help="Port to listen on.")
@click.option("--workers", type=click.IntRange(min=1), default=None,
              help="Server processes accepting on the one socket, each with its own engine; housekeeping runs "
                   "once, in the supervisor. Default: the `workers` setting, 1.")
@common_options
def serve(host: str, port: int, workers: int | None, as_json: bool, home: str | None) -> None:
    """Serve the web pages, MCP over HTTP at /mcp, the JSON API under /api/ and /healthz.

    /mcp, /api/ and /metrics need `Authorization: Bearer TOKEN` (`tiergate tokens issue`), except
    /healthz and /api/openapi.json; people sign in to the web pages with a password
    (`tiergate principals set-password`). Run it as the one OS user that owns the database.
    One process by default; `--workers N` runs N on one socket, to use N cores.
    """
    from tiergate.server import serve as run_server  # Starlette and uvicorn load only for this command

    home = home or (click.get_current_context().obj or {}).get("home")
    engine: Engine | None = None
    try:
        engine = Engine(home=home)
        workers = workers if workers is not None else _workers_setting(engine.settings.get("workers"))
        _ = engine.db  # fail now, with a clear message, if the database is unreachable or outdated
    except TiergateError as err:
        if engine is not None:
            engine.close()
        _fail(err, as_json)
        return
    processes = f", {workers} worker processes" if workers > 1 else ""
    click.echo(f"tiergate serve: http://{host}:{port} (MCP at /mcp, API at /api/, docs at /api/openapi.json"
               f"{processes})", err=True)
    try:
        run_server(engine, host=host, port=port, workers=workers)
    except TiergateError as err:
        _fail(err, as_json)
    finally:
        engine.close()
