"""Signing in and out of the web pages.

``POST /sign-in`` takes ``principal`` (``human:alice`` or ``alice``) and ``password``. A good
password starts a new session (a new secret, whatever cookie the browser sent: no session
fixation) and sends the person on to ``next`` (a path of this site only). Failures say neither
which part was wrong; repeated ones lock the person out (``tiergate.passwords``).
"""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from tiergate.errors import UnauthorizedError
from tiergate.operations import Caller
from tiergate.web.pages import SESSION_COOKIE, VISITOR_COOKIE, Page, Visit


def _next(target: str | None) -> str:
    """Only a path of this site: ``/x`` but not ``//evil.example`` or ``/\\evil``."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target


async def form(visit: Visit) -> Page | Response:
    """The sign-in form (a signed-in person is sent on)."""
    target = _next(visit.request.query_params.get("next"))
    if visit.caller is not None and not visit.wants_json:
        return visit.redirect(target)
    return Page("sign_in.html", {"signed_in_as": visit.principal, "next": target}, title="Sign in",
                context={"principal_typed": ""})


async def sign_in(visit: Visit) -> Page | Response:
    typed = visit.value("principal").strip()
    password = visit.value("password")
    target = _next(visit.value("next"))
    web = visit.web
    try:
        who = await run_in_threadpool(web.passwords.sign_in, typed, password, door="web")
    except UnauthorizedError as err:
        return Page("sign_in.html", {"error": {"code": err.code, "message": err.message}, "next": target},
                    status=401, title="Sign in", context={"principal_typed": typed})
    if visit.secret and visit.caller is not None:  # someone else was signed in here: that session ends
        await run_in_threadpool(web.sessions.end, visit.secret)
    secret, credential = await run_in_threadpool(web.sessions.start, who)
    hours = int(float(web.engine.settings.get("session_hours") or 12) * 3600)
    visit.cookies[SESSION_COOKIE] = (secret, hours)
    visit.cookies[VISITOR_COOKIE] = (None, None)
    visit.say(f"Signed in as {who}.")
    from tiergate.web.table import form_page  # the table imports this module

    kept = {name[5:]: values for name, values in visit.form.items() if name.startswith("kept.") and name[5:]}
    found = form_page(target) if kept and not visit.wants_json else None
    if found is not None:  # a form sent after its session ended: shown again, filled in, to check and send
        view, params = found
        visit.caller, visit.secret, visit.form = Caller.from_credential(credential, via="web"), secret, kept
        visit.request = Request({**visit.request.scope, "method": "GET", "path": target, "path_params": params,
                                 "query_string": b""}, visit.request.receive)
        visit.say("What you typed is in the form again: check it, then send it.")
        return await view(visit)
    if visit.wants_json:
        return Page("sign_in.html", {"principal": str(who), "door": credential.door, "next": target})
    return visit.redirect(target)


async def sign_out(visit: Visit) -> Response:
    await run_in_threadpool(visit.web.sessions.end, visit.secret)
    visit.cookies[SESSION_COOKIE] = (None, None)
    visit.say("Signed out.")
    return visit.redirect("/sign-in")
