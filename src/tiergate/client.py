"""The CLI as a client of `tiergate serve`: with TIERGATE_URL and TIERGATE_TOKEN set, the run
commands go to the server's JSON API instead of the database.

    remote = RemoteEngine.from_environment()     # None unless TIERGATE_URL is set
    remote.status("4f2a...").to_dict()           # GET /api/runs/4f2a...

``RemoteEngine`` answers the part of ``Engine`` the run commands call, with the same shapes, so
the commands need not know where they run. The actor is the token's principal: an ``--actor``
naming anyone else is refused by the server (``actor_mismatch``) and logged there. Only the
standard library is used (no database driver, no HTTP library), so a client starts quickly.
The token goes only into the ``Authorization`` header: never into a message or an error.
"""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

from tiergate.errors import NotFoundError, RefusedError, TiergateError, UsageError

URL_VARIABLE, TOKEN_VARIABLE = "TIERGATE_URL", "TIERGATE_TOKEN"
TIMEOUT_S = 120
#: Codes that exit 2 (a usage error), as the table in docs/cli.md says; every other failure exits 1.
_USAGE_CODES = frozenset({"usage", "invalid_json", "actor_missing", "actor_invalid", "reason_missing", "invalid_encoding",
                          "invalid_since", "invalid_time", "config_invalid", "key_invalid", "webhook_invalid", "token_missing",
                          "token_invalid", "url_invalid", "method_not_allowed"})


class Answer(dict):  # type: ignore[type-arg]
    """A run as the server answered it; ``to_dict`` like ``RunInfo``'s."""

    def to_dict(self) -> dict[str, Any]:
        return dict(self)

    @property
    def status(self) -> Any:
        return self.get("status")


def _error(body: dict[str, Any]) -> TiergateError:
    error = body.get("error") or {}
    code, message, details = error.get("code", "error"), error.get("message", ""), error.get("details") or {}
    if code == "refused":
        return RefusedError(message, reason=str(details.get("reason", "refused")),
                            details={k: v for k, v in details.items() if k != "reason"})
    if code == "not_found":
        return NotFoundError(message, details=details)
    if code in _USAGE_CODES:
        return UsageError(message, code=code, details=details)
    return TiergateError(message, code=code, details=details)


def _check_url(url: str) -> None:
    """Refuse a ``TIERGATE_URL`` that is not an http(s) server's base address, before any request:
    urllib would read a ``file:`` URL from the disk, and a query or fragment would swallow the API's path."""
    try:
        parts = urllib.parse.urlsplit(url)
        _ = parts.port  # a port that is not a number, or out of range
    except ValueError as exc:
        problem = str(exc)
    else:
        problem = ("it must start with http:// or https://" if parts.scheme not in ("http", "https") else
                   "it names no host" if not parts.hostname else
                   "it must not hold a query (?...) or a fragment (#...)" if "?" in url or "#" in url else "")
    if problem:
        raise UsageError(f"{URL_VARIABLE} {url[:200]!r} is not a server's address: {problem}. Set it to the server's "
                         f"base URL, such as http://127.0.0.1:8470, or unset it to work on the database directly.",
                         code="url_invalid", details={"url": url[:200]})


class RemoteEngine:
    """The run commands' part of ``Engine``, over the server's JSON API."""

    def __init__(self, url: str, token: str):
        self.url = url.rstrip("/")
        self._token = token

    @classmethod
    def from_environment(cls) -> "RemoteEngine | None":
        url = os.environ.get(URL_VARIABLE, "").strip()
        if not url:
            return None
        _check_url(url)
        token = os.environ.get(TOKEN_VARIABLE, "").strip()
        if not token:
            raise UsageError(f"{URL_VARIABLE} is set, so commands go to the server, but {TOKEN_VARIABLE} is not. Set "
                             f"{TOKEN_VARIABLE} to your token (from `tiergate tokens issue`), or unset {URL_VARIABLE} "
                             "to work on the database directly.", code="token_missing")
        if not all("!" <= character <= "~" for character in token):  # never echoed: it may be most of a secret
            raise UsageError(f"{TOKEN_VARIABLE} holds a space, a line break or a character outside ASCII, which no "
                             "token has. Copy the token again (tg_ and 43 characters), or ask an operator for a new "
                             "one (`tiergate tokens issue`).", code="token_invalid")
        return cls(url, token)

    def close(self) -> None:
        pass

    def _call(self, method: str, path: str, body: dict[str, Any] | None = None,
              query: dict[str, Any] | None = None) -> Any:
        params = {k: v for k, v in (query or {}).items() if v is not None}
        url = self.url + path + (("?" + urllib.parse.urlencode(params)) if params else "")
        data = None if body is None else json.dumps({k: v for k, v in body.items() if v is not None}).encode("utf-8")
        request = urllib.request.Request(url, data=data, method=method, headers={
            "Authorization": f"Bearer {self._token}", "Content-Type": "application/json", "Accept": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=TIMEOUT_S) as response:  # noqa: S310 - the configured server
                answer = json.loads(response.read())
        except urllib.error.HTTPError as exc:
            try:
                answer = json.loads(exc.read())
            except (ValueError, OSError):
                raise TiergateError(f"the server at {self.url} answered HTTP {exc.code} without a tiergate answer. "
                                    f"Check {URL_VARIABLE}.", code="server_error", details={"status": exc.code}) \
                    from None
        except (urllib.error.URLError, OSError, ValueError) as exc:
            reason = getattr(exc, "reason", exc)
            raise TiergateError(f"cannot reach the tiergate server at {self.url} ({reason}). Check {URL_VARIABLE} "
                                "and that `tiergate serve` runs there.", code="server_unreachable",
                                details={"url": self.url}) from None
        if not isinstance(answer, dict) or "ok" not in answer:
            raise TiergateError(f"the server at {self.url} did not answer the tiergate envelope. Check {URL_VARIABLE}.",
                                code="server_error")
        if not answer["ok"]:
            raise _error(answer)
        return answer.get("data")

    @staticmethod
    def _quote(value: str) -> str:
        return urllib.parse.quote(value, safe="")

    # --- the Engine surface of the run commands ---------------------------------------------

    def start(self, process_id: str, data: Any = None, actor: Any = None) -> Answer:
        data = _read(data, "data")
        return Answer(self._call("POST", "/api/runs", {"process": process_id, "data": data or {},
                                                       "actor": _text(actor)}))

    def signal_broadcasts(self, all_: bool = False) -> dict[str, Any]:
        """``GET /api/signals``: the broadcasts still pending (for auditors)."""
        return dict(self._call("GET", "/api/signals", query={"all": "1" if all_ else None}))

    def signal(self, name: str, data: Any = None, actor: Any = None) -> dict[str, Any]:
        data = _read(data, "data")
        return dict(self._call("POST", "/api/signals", {"name": name, "data": {} if data is None else data,
                                                         "actor": _text(actor)}))

    def status(self, run_id: str) -> Answer:
        return Answer(self._call("GET", f"/api/runs/{self._quote(run_id)}"))

    def complete(self, run_id: str, step_id: str | None, evidence: Any, actor: Any = None) -> Answer:
        from tiergate.inputs import JSONText, parse_json  # the same strict reading as on the database

        if isinstance(evidence, JSONText):
            evidence = parse_json(evidence, "evidence" if step_id is not None else "outcome")
        step = self._quote(step_id) if step_id is not None else "work"
        return Answer(self._call("POST", f"/api/runs/{self._quote(run_id)}/steps/{step}/complete",
                                 {"evidence": evidence, "actor": _text(actor)}))

    def skip(self, run_id: str, step_id: str, reason: str, actor: Any = None) -> Answer:
        return Answer(self._call("POST", f"/api/runs/{self._quote(run_id)}/steps/{self._quote(step_id)}/skip",
                                 {"reason": reason, "actor": _text(actor)}))

    def cancel(self, run_id: str, reason: str, actor: Any = None) -> Answer:
        return Answer(self._call("POST", f"/api/runs/{self._quote(run_id)}/cancel",
                                 {"reason": reason, "actor": _text(actor)}))

    def retry(self, run_id: str, step_id: str, data: Any = None, actor: Any = None) -> Answer:
        data = _read(data, "data")
        return Answer(self._call("POST", f"/api/runs/{self._quote(run_id)}/steps/{self._quote(step_id)}/retry",
                                 {"data": data, "actor": _text(actor)}))

    def runs(self, process: str | None = None, status: str | None = None,
             started_by: str | None = None) -> list[dict[str, Any]]:
        return list(self._call("GET", "/api/runs", query={"process": process, "status": status}))

    def guide(self, run_id: str, *, actor: Any = None, channel: str = "cli") -> dict[str, Any]:
        return dict(self._call("GET", f"/api/runs/{self._quote(run_id)}/guide",
                               query={"actor": _text(actor), "channel": channel}))

    def processes(self) -> list[dict[str, Any]]:
        return list(self._call("GET", "/api/processes"))

    def log(self, run_id: str | None = None) -> list[dict[str, Any]]:
        path = f"/api/runs/{self._quote(run_id)}/log" if run_id is not None else "/api/log"
        return list(self._call("GET", path))

    def verify_log(self) -> dict[str, Any]:
        return dict(self._call("GET", "/api/log/verify"))

    def inbox(self, actor: Any = None) -> list[dict[str, Any]]:
        return list(self._call("GET", "/api/inbox", query={"actor": _text(actor)}))

    def _claim(self, action: str, run_id: str, step_id: str, body: dict[str, Any]) -> dict[str, Any]:
        return dict(self._call("POST", f"/api/runs/{self._quote(run_id)}/steps/{self._quote(step_id)}/{action}", body))

    def claim(self, run_id: str, step_id: str, actor: Any = None) -> dict[str, Any]:
        return self._claim("claim", run_id, step_id, {"actor": _text(actor)})

    def unclaim(self, run_id: str, step_id: str, actor: Any = None) -> dict[str, Any]:
        return self._claim("unclaim", run_id, step_id, {"actor": _text(actor)})

    def assign(self, run_id: str, step_id: str, assignee: Any, actor: Any = None) -> dict[str, Any]:
        return self._claim("assign", run_id, step_id, {"assignee": _text(assignee), "actor": _text(actor)})

    def metrics(self, process: str | None = None, tier: int | None = None, since: Any = None,
                from_log: bool = False) -> dict[str, Any]:
        return dict(self._call("GET", "/api/metrics", query={"process": process, "tier": tier, "since": since}))

    def gaps(self, since: Any = None) -> dict[str, Any]:
        return dict(self._call("GET", "/api/gaps", query={"since": since}))

    def __getattr__(self, name: str) -> Any:
        raise UsageError(f"this command works on the database directly and is not available through the server "
                         f"(TIERGATE_URL is set). Unset {URL_VARIABLE} and run it where the database is.",
                         code="not_available_in_client_mode", details={"needs": name})


def _text(value: Any) -> str | None:
    return None if value is None else str(value)


def _read(value: Any, field: str) -> Any:
    """``value``, or the JSON of an ``inputs.JSONText`` read strictly (as the engine on the database would)."""
    from tiergate.inputs import JSONText, parse_json

    return parse_json(value, field) if isinstance(value, JSONText) else value
