"""A tiny HTTP server on 127.0.0.1 serving canned answers: client metadata documents and worse."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Answer:
    """What one path answers: status, headers, body, and optionally a trickle delay per byte."""

    body: bytes = b""
    status: int = 200
    headers: dict[str, str] = field(default_factory=lambda: {"Content-Type": "application/json"})
    trickle: float = 0.0
    chunked: bool = False


class DocServer:
    """Serve `answers[path]`; count the requests each path received."""

    def __init__(self) -> None:
        self.answers: dict[str, Answer] = {}
        self.hits: dict[str, int] = {}
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                outer.hits[self.path] = outer.hits.get(self.path, 0) + 1
                answer = outer.answers.get(self.path, Answer(b"{}", 404))
                self.send_response(answer.status)
                for name, value in answer.headers.items():
                    self.send_header(name, value)
                if answer.chunked:
                    self.send_header("Transfer-Encoding", "chunked")
                else:
                    self.send_header("Content-Length", str(len(answer.body)))
                self.send_header("Connection", "close")
                self.end_headers()
                self._body(answer)

            def _body(self, answer: Answer) -> None:
                try:
                    if answer.chunked:
                        for start in range(0, len(answer.body), 512):
                            part = answer.body[start : start + 512]
                            self.wfile.write(b"%x\r\n%s\r\n" % (len(part), part))
                        self.wfile.write(b"0\r\n\r\n")
                    elif answer.trickle:
                        for byte in answer.body:
                            self.wfile.write(bytes([byte]))
                            self.wfile.flush()
                            time.sleep(answer.trickle)
                    else:
                        self.wfile.write(answer.body)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up, as it should

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.base = f"http://127.0.0.1:{self.server.server_address[1]}"

    def document(self, path: str, doc: dict[str, Any] | None = None, **answer: Any) -> str:
        """Serve a client metadata document at `path` (client_id = its URL); return the URL."""
        url = self.base + path
        body = json.dumps(doc if doc is not None else client_document(url)).encode()
        self.answers[path] = Answer(body, **answer)
        return url


def client_document(url: str, **changes: Any) -> dict[str, Any]:
    """Return a valid document for `url`: a native app on loopback asking for `read`."""
    doc: dict[str, Any] = {
        "client_id": url,
        "client_name": "Example Agent",
        "redirect_uris": ["http://127.0.0.1/callback"],
        "grant_types": ["authorization_code", "refresh_token"],
        "response_types": ["code"],
        "token_endpoint_auth_method": "none",
        "scope": "read",
    }
    doc.update(changes)
    return {k: v for k, v in doc.items() if v is not None}


@contextmanager
def doc_server() -> Iterator[DocServer]:
    """Run a DocServer for the duration of the block."""
    server = DocServer()
    thread = threading.Thread(target=server.server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.server.shutdown()
        server.server.server_close()
