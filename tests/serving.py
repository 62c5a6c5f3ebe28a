"""`tiergate serve` as a real subprocess for the tests of its doors (API, MCP over HTTP, web pages).

    with running_server(home, db_url, tmp_path / "server.log") as server:   # a Server
        server.client(token).get("/api/runs")
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence, TypeVar

import httpx2 as httpx
import pytest


class Server:
    def __init__(self, url: str, process: subprocess.Popen[bytes], errlog: Path):
        self.url, self.process, self.errlog = url, process, errlog

    def client(self, token: str | None = None) -> httpx.Client:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=60)


S = TypeVar("S")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def running_server(root: Path, db_url: str, errlog: Path, env: dict[str, str] | None = None,
                   kind: Callable[[str, subprocess.Popen[bytes], Path], S] = Server,  # type: ignore[assignment]
                   args: Sequence[str] = ()) -> Iterator[S]:
    """`tiergate serve` as a real subprocess on a free port of 127.0.0.1, ready when /healthz answers;
    ``kind`` wraps it (``Server``, or the web tests' ``WebServer``); ``args`` go to `serve` (``--workers 2``)."""
    port = free_port()
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("TIERGATE_")}
    full_env.update(TIERGATE_DATABASE_URL=db_url, NO_COLOR="1", **(env or {}))
    with errlog.open("wb") as err:
        process = subprocess.Popen([sys.executable, "-m", "tiergate", "--home", str(root), "serve",
                                    "--port", str(port), *args], env=full_env, stdout=err, stderr=err, cwd=root)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while True:
        try:
            if httpx.get(f"{url}/healthz", timeout=5).status_code == 200:
                break
        except httpx.TransportError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            pytest.fail(f"the server did not start:\n{errlog.read_text()}")
        time.sleep(0.1)
    try:
        yield kind(url, process, errlog)
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()


def issue_token(cli: Callable[..., Any], home: Any, principal: str) -> str:
    """A new bearer token for ``principal``, issued with `tiergate tokens issue` on the database directly."""
    result = cli("tokens", "issue", principal, "--json", home=home)
    assert result.returncode == 0, result
    return str(result.json["data"]["token"])
