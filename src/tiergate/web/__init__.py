"""The people's door: web pages served by `tiergate serve`, on the same operations as every door.

    routes = tiergate.web.routes(engine, operations, run_locked)   # Starlette routes, mounted by the server

Every page comes from one operation of ``tiergate.operations``, rendered two ways
(``tiergate.web.pages.Page``): as HTML for a browser, or as the JSON envelope of the API when the
request asks for JSON (``Accept: application/json``) or its path ends in ``.json`` (``/.json`` is
the inbox). So a page and its API answer cannot disagree.

- People sign in with a password (``tiergate principals set-password``); the session cookie is
  the credential (``tiergate.sessions``), and entries they make are logged through the door
  ``session:<id>``. Bearer tokens do not open pages, and agents cannot sign in.
- Every form carries a CSRF token (``tiergate.sessions.csrf_token``); a POST without the right one
  changes nothing (403).
- Pages work without JavaScript (forms and redirects); scripts only enhance.

The route table is ``tiergate.web.table.ROUTES``: one place, one line per page or action. A new
page is a view module here, one line in that table, and a template that extends ``base.html``
(blocks ``nav``, ``head``, ``content``, ``scripts``; set ``nav_current`` to mark its nav link).
What pages may load is ``tiergate.web.plain.SECURITY_HEADERS`` (only this server's files).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

from starlette.routing import BaseRoute, Mount
from starlette.staticfiles import StaticFiles

from tiergate.engine import Engine
from tiergate.operations import Operations

STATIC = Path(__file__).parent / "static"
#: Paths that are not the web pages' (they authenticate with bearer tokens, or not at all).
OTHER_DOORS = ("/api", "/mcp", "/metrics", "/healthz")


def is_web_path(path: str) -> bool:
    """Whether ``path`` belongs to the web pages (which check sessions themselves, not tokens)."""
    return not any(path == prefix or path.startswith(prefix + "/") for prefix in OTHER_DOORS)


def routes(engine: Engine, operations: Operations, run_locked: Callable[..., Any],
           max_body: int = 2 * 1024 * 1024) -> list[BaseRoute]:
    """The web pages' routes, from ``tiergate.web.table.ROUTES``, and their static files; a form
    over ``max_body`` bytes (the server's limit for every door) is answered with an error page."""
    from tiergate.web.pages import Web
    from tiergate.web.table import starlette_routes

    web = Web(engine, operations, run_locked, max_body=max_body)
    return [*starlette_routes(web), Mount("/static", StaticFiles(directory=STATIC), name="static")]
