"""The web pages' route table: every page and form action, in one place.

Each ``WebRoute`` names a view (``async def view(visit) -> Page | Response``, see
``tiergate.web.pages``). A GET page answers JSON too: at its path with ``Accept:
application/json``, and at the path with ``.json`` added (``/.json`` for ``/``). Every POST needs
the form's CSRF token. Only ``public`` routes open without a session (the sign-in form).

To add a page: write its view in its own module of ``tiergate.web`` and add one line here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from starlette.routing import Route, compile_path

from tiergate.web import inbox, leads, runs, signin, starting, steps

if TYPE_CHECKING:
    from tiergate.web.pages import View, Web


@dataclass(frozen=True)
class WebRoute:
    method: str
    path: str
    view: "View"
    name: str
    public: bool = False


ROUTES: tuple[WebRoute, ...] = (
    WebRoute("GET", "/sign-in", signin.form, "sign_in", public=True),
    WebRoute("POST", "/sign-in", signin.sign_in, "sign_in_post", public=True),
    WebRoute("POST", "/sign-out", signin.sign_out, "sign_out"),
    WebRoute("GET", "/", inbox.show, "inbox"),
    WebRoute("POST", "/runs/{run}/steps/{step}/claim", inbox.claim, "claim"),
    WebRoute("POST", "/runs/{run}/steps/{step}/unclaim", inbox.unclaim, "unclaim"),
    WebRoute("GET", "/runs/{run}/steps/{step}", steps.show, "step"),
    WebRoute("POST", "/runs/{run}/steps/{step}", steps.submit, "step_submit"),
    WebRoute("POST", "/runs/{run}/steps/{step}/skip", steps.skip, "step_skip"),
    WebRoute("POST", "/runs/{run}/cancel", steps.cancel, "cancel"),
    WebRoute("GET", "/start/{process}", starting.show, "start"),
    WebRoute("POST", "/start/{process}", starting.submit, "start_submit"),
    WebRoute("GET", "/runs/{run}", runs.show, "run"),
    WebRoute("GET", "/report", leads.report, "report"),
    WebRoute("GET", "/gaps", leads.gaps, "gaps"),
    WebRoute("GET", "/catalog", leads.catalog, "catalog"),
)


def form_page(path: str) -> tuple["View", dict[str, str]] | None:
    """The page of the form that ``path`` is sent to (a path taking both GET and POST: a step's form,
    a start form): its view and path parameters, or None."""
    posts = {route.path for route in ROUTES if route.method == "POST"}
    for route in ROUTES:
        if route.method == "GET" and route.path in posts and route.path != "/sign-in":
            found = compile_path(route.path)[0].match(path)
            if found is not None:
                return route.view, found.groupdict()
    return None


def json_path(path: str) -> str:
    """Where a page answers JSON: its path with ``.json`` added (``/.json`` for ``/``)."""
    return "/.json" if path == "/" else path + ".json"


def starlette_routes(web: "Web") -> list[Route]:
    """Starlette routes for ``ROUTES``: each GET page's ``.json`` path first (a path parameter
    would take the suffix in), then the pages themselves."""
    found: list[Route] = []
    for route in ROUTES:
        if route.method == "GET":
            found.append(Route(json_path(route.path), web.endpoint(route.view, public=route.public, as_json=True),
                               methods=["GET"], name=route.name + "_json"))
    for route in ROUTES:
        found.append(Route(route.path, web.endpoint(route.view, public=route.public), methods=[route.method],
                           name=route.name))
    return found
