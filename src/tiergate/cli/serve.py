"""`tiergate serve`: the HTTP server (MCP over HTTP, the JSON API, /healthz)."""

from __future__ import annotations

import click

from tiergate.cli.output import _fail, common_options
from tiergate.engine import Engine
from tiergate.errors import TiergateError


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8470, show_default=True, type=click.IntRange(1, 65535), help="Port to listen on.")
@common_options
def serve(host: str, port: int, as_json: bool, home: str | None) -> None:
    """Serve the web pages, MCP over HTTP at /mcp, the JSON API under /api/ and /healthz, in one process.

    /mcp, /api/ and /metrics need `Authorization: Bearer TOKEN` (`tiergate tokens issue`), except
    /healthz and /api/openapi.json; people sign in to the web pages with a password
    (`tiergate principals set-password`). Run it as the one OS user that owns the database.
    """
    from tiergate.server import serve as run_server  # Starlette and uvicorn load only for this command

    home = home or (click.get_current_context().obj or {}).get("home")
    engine: Engine | None = None
    try:
        engine = Engine(home=home)
        _ = engine.db  # fail now, with a clear message, if the database is unreachable or outdated
    except TiergateError as err:
        if engine is not None:
            engine.close()
        _fail(err, as_json)
        return
    click.echo(f"tiergate serve: http://{host}:{port} (MCP at /mcp, API at /api/, docs at /api/openapi.json)",
               err=True)
    try:
        run_server(engine, host=host, port=port)
    finally:
        engine.close()
