"""OpenTelemetry: a span per attempt on a run and per HTTP request, once a tracer provider is set."""

from __future__ import annotations

import socket
import threading
import urllib.error
import urllib.request
from typing import Callable, Iterator

import pytest

from support import HomeBuilder
from tiergate.engine import Engine
from tiergate.errors import RefusedError

sdk = pytest.importorskip("opentelemetry.sdk.trace")
from opentelemetry import trace  # noqa: E402
from opentelemetry.sdk.trace.export import SimpleSpanProcessor  # noqa: E402
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter  # noqa: E402

GOOD = {"summary": "Payslip totals are off by one cent", "severity": "S2"}
_EXPORTER = InMemorySpanExporter()


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    provider = trace.get_tracer_provider()
    if not isinstance(provider, sdk.TracerProvider):
        provider = sdk.TracerProvider()
        provider.add_span_processor(SimpleSpanProcessor(_EXPORTER))
        trace.set_tracer_provider(provider)
    _EXPORTER.clear()
    yield _EXPORTER
    _EXPORTER.clear()


def test_no_provider_means_no_span(demo_home: HomeBuilder, make_engine: Callable[..., Engine]) -> None:
    from tiergate import tracing

    if isinstance(trace.get_tracer_provider(), sdk.TracerProvider):
        pytest.skip("a tracer provider was set earlier in this process")
    assert tracing._tracer() is None


def test_each_attempt_is_a_span_with_its_outcome(demo_home: HomeBuilder, make_engine: Callable[..., Engine],
                                                 spans: InMemorySpanExporter) -> None:
    engine = make_engine(demo_home)
    run = engine.start("demo", {"ticket_id": "T-1"}, actor="agent:bot").id
    engine.complete(run, "gather", GOOD, actor="agent:bot")
    with pytest.raises(RefusedError):
        engine.complete(run, "review", {"approved": True}, actor="agent:bot")
    done, refused = [s for s in spans.get_finished_spans() if s.name == "tiergate.complete"]
    assert dict(done.attributes or {}) == {"tiergate.run.id": run, "tiergate.attempt": "complete",
                                            "tiergate.actor": "agent:bot", "tiergate.step.id": "gather"}
    assert done.status.is_ok
    assert refused.attributes["tiergate.error.code"] == "refused" and not refused.status.is_ok


def test_each_request_is_a_server_span(demo_home: HomeBuilder, make_engine: Callable[..., Engine],
                                       spans: InMemorySpanExporter) -> None:
    import uvicorn

    from tiergate.server import build_app

    engine = make_engine(demo_home)
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)   # connections wait in the backlog until the server accepts them
    port = listener.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(build_app(engine), log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [listener]}, daemon=True)
    thread.start()
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))   # straight to 127.0.0.1
    try:
        with opener.open(f"http://127.0.0.1:{port}/healthz", timeout=30) as answer:
            assert answer.status == 200
        with pytest.raises(urllib.error.HTTPError) as refused:
            opener.open(f"http://127.0.0.1:{port}/api/runs", timeout=30)
        assert refused.value.code == 401
    finally:
        server.should_exit = True
        thread.join(timeout=60)
        listener.close()
    served = {s.name: s for s in spans.get_finished_spans() if s.kind == trace.SpanKind.SERVER}
    assert served["GET /healthz"].attributes["http.response.status_code"] == 200
    assert served["GET /api/runs"].attributes["http.response.status_code"] == 401
    assert served["GET /api/runs"].attributes["url.path"] == "/api/runs"
