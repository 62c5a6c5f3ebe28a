"""How a web view runs: who is signed in, the CSRF check, one operation, and its answer as HTML or JSON.

A view is ``async def view(visit: Visit) -> Page | Response``. ``Web.endpoint`` wraps it:

1. the session cookie is checked (``tiergate.sessions``); a visitor who is not signed in is sent
   to ``/sign-in`` (a page) or answered 401 (JSON). Bearer tokens are not looked at here;
2. a POST's body is read (bounded) as a form, and its CSRF token (field ``csrf`` or header
   ``X-CSRF-Token``) must match the cookie's; if not, 403 and nothing runs;
3. the view calls operations through ``visit.call`` (one engine call at a time, as the API does),
   as the signed-in person through the door ``session:<id>``;
4. a ``Page`` it returns is rendered as HTML (its template, with the layout) or, when the request
   asks for JSON (``Accept: application/json`` or a ``.json`` path), as the API's envelope of the
   same data. A ``TiergateError`` becomes an error page (or envelope) with the API's HTTP status:
   ``not_found`` 404, a refusal to act 403, a gate failure 422.

Templates are Jinja with autoescape on; they are tiergate's own files, never a definition's.
"""

from __future__ import annotations

import json
from base64 import urlsafe_b64decode, urlsafe_b64encode
from dataclasses import dataclass, field
from functools import partial
from typing import Any, Awaitable, Callable
from urllib.parse import parse_qsl, quote, urlsplit

from jinja2 import Environment, PackageLoader, select_autoescape
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response

from tiergate import __version__, incidents
from tiergate.credentials import Credential
from tiergate.engine import Engine
from tiergate.envelope import failure, success
from tiergate.errors import TiergateError, UnauthorizedError, UsageError
from tiergate.jsonutil import to_jsonable
from tiergate.operations import Caller, Operations
from tiergate.passwords import Passwords
from tiergate.server.api import http_status
from tiergate.mcpserver import caller_key
from tiergate.sessions import Sessions, csrf_matches, csrf_token, new_secret
from tiergate.web.plain import SECURITY_HEADERS, form_too_large
from tiergate.web.text import markdown

SESSION_COOKIE = "tiergate_session"
#: A signed-out visitor's cookie: what the sign-in form's CSRF token is bound to.
VISITOR_COOKIE = "tiergate_visitor"
FLASH_COOKIE = "tiergate_flash"
MAX_FORM_FIELDS = 2000


@dataclass
class Page:
    """What a view answers: a template and its data. The JSON answer is ``data`` alone (or ``json``)."""

    template: str
    data: Any
    status: int = 200
    #: Extra template values that are not part of the JSON answer (form fields, errors, ...).
    context: dict[str, Any] = field(default_factory=dict)
    title: str = ""


@dataclass
class Visit:
    """One request to a view: who, what they sent, and how to call operations as them."""

    request: Request
    web: "Web"
    caller: Caller | None
    secret: str  # the session's (or a visitor's) cookie secret: the CSRF token is derived from it
    wants_json: bool
    form: dict[str, list[str]] = field(default_factory=dict)
    flash: list[dict[str, str]] = field(default_factory=list)
    #: Cookies to set on the answer: name -> (value or None to delete, max_age).
    cookies: dict[str, tuple[str | None, int | None]] = field(default_factory=dict)

    @property
    def principal(self) -> str | None:
        return str(self.caller.principal) if self.caller is not None and self.caller.principal else None

    def value(self, name: str, default: str = "") -> str:
        values = self.form.get(name)
        return values[-1] if values else default

    async def call(self, operation: str, *args: Any, **kwargs: Any) -> Any:
        """Call ``Operations.<operation>`` as the signed-in person, one engine call at a time."""
        method = partial(getattr(self.web.operations, operation), self.caller, *args, **kwargs)
        return await run_in_threadpool(self.web.run_locked, method)

    def say(self, text: str, kind: str = "ok") -> None:
        """A message for the next page (after a redirect): kind ``ok`` or ``error``."""
        self.flash.append({"kind": kind, "text": text})

    def redirect(self, url: str) -> Response:
        """After a POST: to the next page (303, so the browser GETs it), with the messages said."""
        if self.wants_json:
            return JSONResponse(success({"next": url, "messages": self.flash}))
        return RedirectResponse(url, status_code=303)


View = Callable[[Visit], Awaitable["Page | Response"]]


def _same_site(request: Request) -> bool:
    """Whether a POST came from a page of this server (its ``Origin`` names this host): only then is
    what it carried kept across a sign-in, so another site's form cannot put its fields in ours."""
    origin = request.headers.get("origin") or ""
    return bool(origin) and urlsplit(origin).netloc == request.headers.get("host", "")


def _encode_flash(messages: list[dict[str, str]]) -> str:
    return urlsafe_b64encode(json.dumps(messages[:5]).encode("utf-8")).decode("ascii")


def _decode_flash(text: str | None) -> list[dict[str, str]]:
    if not text or len(text) > 4000:
        return []
    try:
        items = json.loads(urlsafe_b64decode(text.encode("ascii")))
    except (ValueError, UnicodeError):
        return []
    return [{"kind": "error" if i.get("kind") == "error" else "ok", "text": str(i.get("text", ""))[:500]}
            for i in items if isinstance(i, dict)][:5] if isinstance(items, list) else []


class _TooLarge(Exception):
    pass


def too_large(limit: int) -> TiergateError:
    """A form over the body limit, as an error for its page."""
    return TiergateError(form_too_large(limit), code="body_too_large", details={"limit": limit})


class Web:
    """The web pages over one engine: templates, sessions, and how views are run."""

    def __init__(self, engine: Engine, operations: Operations, run_locked: Callable[..., Any],
                 max_body: int = 2 * 1024 * 1024):
        self.engine = engine
        self.operations = operations
        self.run_locked = run_locked
        self.sessions = Sessions(engine)
        self.passwords = Passwords(engine)
        self.max_body = max_body
        self.templates = Environment(loader=PackageLoader("tiergate.web", "templates"),
                                     autoescape=select_autoescape(default=True, default_for_string=True),
                                     trim_blocks=True, lstrip_blocks=True)
        self.templates.filters["markdown"] = markdown
        self.templates.globals["version"] = __version__

    # --- answering ---------------------------------------------------------------------------

    def render(self, visit: Visit, page: Page) -> Response:
        if visit.wants_json:
            answer = success(to_jsonable(page.data)) if page.status < 400 else page.data
            return JSONResponse(answer, status_code=page.status)
        template = self.templates.get_template(page.template)
        html = template.render(data=page.data, visit=visit, principal=visit.principal, title=page.title,
                               csrf=csrf_token(visit.secret), flash=visit.flash, **page.context)
        return HTMLResponse(html, status_code=page.status)

    def error_page(self, visit: Visit, err: TiergateError, status: int | None = None) -> Response:
        status = status or http_status(err)
        page = Page("error.html", failure(err.code, err.message, to_jsonable(err.details)), status=status,
                    title={404: "Not found", 403: "Not allowed"}.get(status, "Something went wrong"))
        return self.render(visit, page)

    # --- running a view ----------------------------------------------------------------------

    def endpoint(self, view: View, *, public: bool = False, as_json: bool = False) -> Callable[[Request], Any]:
        attempt = f"{view.__module__.rsplit('.', 1)[-1]}.{view.__name__}"  # steps.submit: what a refusal records

        async def handle(request: Request) -> Response:
            wants_json = as_json or "application/json" in request.headers.get("accept", "")
            secret = request.cookies.get(SESSION_COOKIE) or ""
            caller: Caller | None = None
            visit = Visit(request, self, None, secret, wants_json, flash=_decode_flash(request.cookies.get(FLASH_COOKIE)))
            try:
                credential: Credential = await run_in_threadpool(self.sessions.authenticate, secret or None)
                caller = Caller.from_credential(credential, via="web")
            except UnauthorizedError as err:
                if not public and request.method == "POST" and not wants_json and _same_site(request):
                    return self._finish(visit, await self._sign_in_again(visit))
                if not public:
                    return self._finish(visit, self._sign_in_first(visit, err))
                visit.secret = request.cookies.get(VISITOR_COOKIE) or ""
                if not visit.secret:
                    visit.secret = new_secret()
                    visit.cookies[VISITOR_COOKIE] = (visit.secret, None)
            except TiergateError as err:  # the database is away: nobody can be checked
                return self._finish(visit, self.error_page(visit, err, 503))
            visit.caller = caller
            request.scope[caller_key] = caller  # for the server's last catch (tiergate.server.lastresort)
            if request.method == "POST":
                try:
                    visit.form = await self._read_form(request)
                except _TooLarge:
                    return self._finish(visit, self.error_page(visit, too_large(self.max_body), 413))
                except UsageError as err:
                    return self._finish(visit, self.error_page(visit, err))
                token = visit.value("csrf") or request.headers.get("x-csrf-token")
                if not csrf_matches(visit.secret, token):
                    refusal = UnauthorizedError("this form is out of date or did not come from this site (its CSRF "
                                                "token is missing or wrong), so nothing was done. Go back, reload "
                                                "the page and send it again.", code="csrf_failed")
                    return self._finish(visit, self.error_page(visit, refusal, 403))
            try:
                answer = await view(visit)
                response = answer if isinstance(answer, Response) else self.render(visit, answer)
            except TiergateError as err:
                return self._finish(visit, self.error_page(visit, err))
            except Exception as exc:  # noqa: BLE001 - the pages' last catch: an incident, never a traceback
                return self._finish(visit, await self._incident(visit, exc, attempt))
            return self._finish(visit, response)

        return handle

    async def _incident(self, visit: Visit, error: Exception, attempt: str) -> Response:
        """The error page of an unforeseen failure: its incident id, no detail (``tiergate.incidents``)."""
        caller, request = visit.caller, visit.request
        incident = incidents.report(error, door="web", what=f"{request.method} {request.url.path}",
                                    actor=caller.principal if caller is not None else None)
        if caller is not None:
            await run_in_threadpool(incidents.record, self.engine, incident, door="web", attempt=attempt,
                                    actor=caller.principal, credential=caller.door)
        error_answer = incident.envelope()
        page = Page("error.html", error_answer, status=incidents.STATUS, title="Something went wrong")
        try:
            return self.render(visit, page)
        except Exception:  # noqa: BLE001 - the layout itself failed: the plain page
            from tiergate.web import plain

            body = plain.error_page(page.title, incident.message, incidents.CODE)
            return HTMLResponse(body, status_code=incidents.STATUS)

    async def _sign_in_again(self, visit: Visit) -> Response:
        """A form of this site sent after its session ended (it expired, or was ended elsewhere): nothing
        is done, and the sign-in form is answered (401) carrying what was typed (``kept.<field>``), so
        that signing in shows the form again filled in, to check and send (``signin.sign_in``)."""
        from tiergate.web.table import form_page

        path = visit.request.url.path
        visit.secret = visit.request.cookies.get(VISITOR_COOKIE) or ""
        if not visit.secret:
            visit.secret = new_secret()
            visit.cookies[VISITOR_COOKIE] = (visit.secret, None)
        kept: list[tuple[str, str]] = []
        if form_page(path) is not None:
            try:
                form = await self._read_form(visit.request)
            except (_TooLarge, UsageError):
                form = {}
            kept = [(name, value) for name, values in form.items() if name != "csrf" for value in values]
        message = ("your session has ended (it expired, or you signed out elsewhere), so nothing was done. Sign in "
                   "again" + (": what you typed is kept, and shown in the form again to check and send." if kept
                              else ", then do it again."))
        page = Page("sign_in.html", {"error": {"code": "unauthorized", "message": message},
                                     "next": path if form_page(path) is not None else "/"},
                    status=401, title="Sign in", context={"principal_typed": "", "kept": kept})
        return self.render(visit, page)

    def _sign_in_first(self, visit: Visit, err: UnauthorizedError) -> Response:
        if visit.wants_json:
            return JSONResponse(failure(err.code, err.message, err.details), status_code=401)
        from tiergate.web.table import form_page

        target = visit.request.url.path + (f"?{visit.request.url.query}" if visit.request.url.query else "")
        if visit.request.method == "POST" and form_page(visit.request.url.path) is None:
            target = "/"  # an action (claim, cancel, ...) has no page to come back to: the inbox
        return RedirectResponse(f"/sign-in?next={quote(target, safe='')}", status_code=303)

    def _finish(self, visit: Visit, response: Response) -> Response:
        secure = visit.request.url.scheme == "https"
        for name, (value, max_age) in visit.cookies.items():
            if value is None:
                response.delete_cookie(name, httponly=True, secure=secure, samesite="lax")
            else:
                response.set_cookie(name, value, max_age=max_age, httponly=True, secure=secure, samesite="lax")
        if response.status_code in (301, 302, 303, 307) and visit.flash:
            response.set_cookie(FLASH_COOKIE, _encode_flash(visit.flash), max_age=60, httponly=True, secure=secure,
                                samesite="lax")
        elif FLASH_COOKIE in visit.request.cookies:
            response.delete_cookie(FLASH_COOKIE, httponly=True, secure=secure, samesite="lax")
        for name, value in SECURITY_HEADERS.items():
            response.headers.setdefault(name, value)
        return response

    async def _read_form(self, request: Request) -> dict[str, list[str]]:
        chunks, size = [], 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > self.max_body:
                raise _TooLarge
            chunks.append(chunk)
        text = b"".join(chunks).decode("utf-8", errors="replace")
        form: dict[str, list[str]] = {}
        try:
            pairs = parse_qsl(text, keep_blank_values=True, max_num_fields=MAX_FORM_FIELDS)
        except ValueError:  # more fields than any form of these pages has
            raise UsageError(f"this form sent more than {MAX_FORM_FIELDS:,} fields, more than any form here has, so "
                             "nothing was done. Go back, reload the page and send the form again.",
                             code="invalid_input", details={"problem": "too_many_fields", "limit": MAX_FORM_FIELDS}
                             ) from None
        for name, value in pairs:
            form.setdefault(name, []).append(value.replace("\r\n", "\n"))
        return form
