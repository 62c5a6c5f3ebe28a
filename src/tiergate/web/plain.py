"""Answers for a browser made without the web pages' templates: where no view runs (a body refused
at the door, an incident outside any view), a person still gets a page, not JSON.

    plain.wants_json(scope)                         # Accept: application/json, or a .json path
    plain.error_page("Too large", message, "body_too_large")   # bytes of a whole HTML page
    await plain.send_page(send, 413, page)          # on ASGI, with the pages' security headers
"""

from __future__ import annotations

from html import escape
from typing import Any

#: What pages may load: only this server's own files (the vendored viewers too); no inline scripts.
SECURITY_HEADERS = {
    "content-security-policy": "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
                               "img-src 'self' data:; object-src 'none'; base-uri 'none'; form-action 'self'; "
                               "frame-ancestors 'none'",
    "x-content-type-options": "nosniff",
    "referrer-policy": "same-origin",
    "cache-control": "no-store",
}


def form_too_large(limit: int) -> str:
    """What a person is told of a form over the body limit (the API's words are for programs)."""
    return (f"this form sent more than {limit:,} bytes, the limit, so nothing was done. Go back, shorten what you "
            "typed (keep large files elsewhere and give a link to them) and send it again.")


def wants_json(scope: Any) -> bool:
    """Whether a request to the web pages asks for the JSON envelope rather than a page."""
    accept = b""
    for key, value in scope.get("headers", ()):
        if key == b"accept":
            accept = bytes(value)
            break
    return b"application/json" in accept or str(scope.get("path", "")).endswith(".json")


def error_page(title: str, message: str, code: str, back: str = "/") -> bytes:
    """A whole page in the look of the web pages (their stylesheet), saying what went wrong."""
    return (f'<!doctype html>\n<html lang="en">\n<head>\n  <meta charset="utf-8">\n'
            f'  <meta name="viewport" content="width=device-width, initial-scale=1">\n'
            f'  <title>{escape(title)} · tiergate</title>\n  <link rel="stylesheet" href="/static/web.css">\n'
            f'</head>\n<body>\n  <header class="top"><a class="brand" href="/">tiergate</a></header>\n'
            f'  <main id="main">\n    <h1>{escape(title)}</h1>\n'
            f'    <p class="error-message" id="error-message">{escape(message)}</p>\n'
            f'    <p><small>Error code: <code>{escape(code)}</code></small></p>\n'
            f'    <p><a href="{escape(back)}">Back to the inbox</a></p>\n  </main>\n</body>\n</html>\n'
            ).encode("utf-8")


async def send_page(send: Any, status: int, page: bytes) -> None:
    """Answer ``page`` (HTML) on an ASGI ``send``, with the web pages' security headers."""
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"text/html; charset=utf-8"), (b"content-length", str(len(page)).encode()),
                            *((name.encode(), value.encode()) for name, value in SECURITY_HEADERS.items())]})
    await send({"type": "http.response.body", "body": page})
