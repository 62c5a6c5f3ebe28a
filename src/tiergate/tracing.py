"""OpenTelemetry traces, when the optional extra is installed: ``pip install 'tiergate[otel]'``.

One span per HTTP request of ``tiergate serve`` (``RequestSpans``, a pure ASGI middleware, kind
SERVER, with the HTTP semantic conventions' ``http.request.method``, ``url.path``,
``http.route`` and ``http.response.status_code``) and one per attempt on a run (``step_span``:
complete, skip, cancel, retry; kind INTERNAL, named ``tiergate.<attempt>``, with ``tiergate.run.id``,
``tiergate.step.id``, ``tiergate.attempt``, ``tiergate.actor``, and ``tiergate.error.code`` when
the attempt fails). No workflow semantic conventions are stable yet, hence tiergate's own names.

Without the ``opentelemetry`` package, or with it but no tracer provider configured (the API's
default proxy), nothing is done: no span object is made, so a step costs what it did. Configure
a provider and exporter the usual way (``opentelemetry-instrument`` or the SDK in a wrapper).
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Any, Iterator

try:  # the optional extra
    from opentelemetry import trace as _trace
    from opentelemetry.trace import ProxyTracerProvider, SpanKind, Status, StatusCode
except ImportError:  # pragma: no cover - exercised where the package is absent
    _trace = None  # type: ignore[assignment]

_NAME = "tiergate"


def _tracer() -> Any:
    """The tiergate tracer, or None when no tracer provider is configured (or no package)."""
    if _trace is None:
        return None
    provider = _trace.get_tracer_provider()
    if isinstance(provider, (ProxyTracerProvider, _trace.NoOpTracerProvider)):
        return None
    from tiergate import __version__

    return provider.get_tracer(_NAME, __version__)


def tracing_on() -> bool:
    """Whether traces are recorded (a tracer provider is configured)."""
    return _tracer() is not None


@contextmanager
def step_span(attempt: str, run_id: str, step_id: str | None, actor: Any) -> Iterator[None]:
    tracer = _tracer()
    if tracer is None:
        yield
        return
    attributes = {"tiergate.run.id": run_id, "tiergate.attempt": attempt, "tiergate.actor": str(actor)}
    if step_id is not None:
        attributes["tiergate.step.id"] = step_id
    with tracer.start_as_current_span(f"tiergate.{attempt}", kind=SpanKind.INTERNAL, attributes=attributes,
                                      record_exception=False, set_status_on_exception=False) as span:
        try:
            yield
        except Exception as exc:
            span.set_attribute("tiergate.error.code", getattr(exc, "code", type(exc).__name__))
            span.set_status(Status(StatusCode.ERROR, getattr(exc, "code", type(exc).__name__)))
            raise


class RequestSpans:
    """ASGI middleware: one SERVER span per HTTP request (nothing when tracing is off)."""

    def __init__(self, app: Any):
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        tracer = _tracer() if scope.get("type") == "http" else None
        if tracer is None:
            await self.app(scope, receive, send)
            return
        method, path = scope.get("method", "GET"), scope.get("path", "/")
        attributes = {"http.request.method": method, "url.path": path, "url.scheme": scope.get("scheme", "http")}
        with tracer.start_as_current_span(f"{method} {path}", kind=SpanKind.SERVER, attributes=attributes) as span:
            async def traced_send(message: Any) -> None:
                if message.get("type") == "http.response.start":
                    status = int(message.get("status", 0))
                    span.set_attribute("http.response.status_code", status)
                    if status >= 500:
                        span.set_status(Status(StatusCode.ERROR))
                await send(message)

            await self.app(scope, receive, traced_send)
            route = scope.get("route")
            if route is not None and getattr(route, "path", None):
                span.set_attribute("http.route", route.path)
