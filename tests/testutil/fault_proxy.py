"""An HTTP proxy in front of a test registry that counts requests and injects faults on demand.

It forwards each request to the upstream registry unchanged (the Host header too, so the registry's
Location headers point back at the proxy) and records method, path, status and request body bytes.
Faults match by method and a path substring and fire a given number of times:
- `drop`: forward the headers and half of the body upstream, then close both connections;
- `status`: answer `status` (with `Retry-After` if given) without forwarding;
- `stall`: hold the request for `seconds`, then close without an answer (past the client's timeout);
- `down`: from then on close every connection at once (the registry "goes down").
"""

from __future__ import annotations

import contextlib
import http.client
import socket
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Iterator, List, Optional

from testutil.servers import free_port

_HOP_BY_HOP = {
    "connection",
    "keep-alive",
    "transfer-encoding",
    "te",
    "trailer",
    "upgrade",
    "proxy-connection",
}


@dataclass
class Fault:
    action: str  # "drop" | "status" | "stall" | "down"
    method: str = "*"
    path_contains: str = ""
    status: int = 500
    retry_after: Optional[str] = None
    seconds: float = 0.0
    skip: int = 0  # let this many matching requests through first
    times: int = 1

    def matches(self, method: str, path: str) -> bool:
        return (self.method in ("*", method)) and self.path_contains in path


@dataclass(frozen=True)
class Seen:
    method: str
    path: str  # without the query
    query: str
    status: Optional[int]  # None: no answer (a fault closed the connection)
    body_bytes: int
    fault: Optional[str] = None


class FaultProxy:
    def __init__(self, upstream: str) -> None:
        self.upstream = upstream
        self.faults: List[Fault] = []
        self.seen: List[Seen] = []
        self.down = False
        self._lock = threading.Lock()
        self.address = ""

    def inject(self, fault: Fault) -> None:
        with self._lock:
            self.faults.append(fault)

    def reset(self) -> None:
        with self._lock:
            self.faults.clear()
            self.seen.clear()
            self.down = False

    def count(self, method: Optional[str] = None, path_contains: str = "") -> int:
        with self._lock:
            return sum(
                1
                for s in self.seen
                if (method is None or s.method == method) and path_contains in s.path and s.status is not None
            )

    def bytes_received(self) -> int:
        with self._lock:
            return sum(s.body_bytes for s in self.seen)

    def _fault_for(self, method: str, path: str) -> Optional[Fault]:
        with self._lock:
            for fault in self.faults:
                if fault.times > 0 and fault.matches(method, path):
                    if fault.skip > 0:
                        fault.skip -= 1
                        continue
                    fault.times -= 1
                    return fault
        return None

    def _record(self, seen: Seen) -> None:
        with self._lock:
            self.seen.append(seen)


def _read_body(handler: BaseHTTPRequestHandler) -> bytes:
    if handler.headers.get("Transfer-Encoding", "").lower() == "chunked":
        parts: List[bytes] = []
        while True:
            size = int(handler.rfile.readline().split(b";")[0].strip() or b"0", 16)
            if size == 0:
                while handler.rfile.readline() not in (b"\r\n", b"\n", b""):
                    pass  # trailers
                return b"".join(parts)
            parts.append(handler.rfile.read(size))
            handler.rfile.readline()
    length = int(handler.headers.get("Content-Length") or 0)
    return handler.rfile.read(length) if length else b""


def _handler(proxy: FaultProxy) -> type:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: object) -> None:
            pass

        def _abort(self) -> None:
            self.close_connection = True
            with contextlib.suppress(OSError):
                self.connection.shutdown(socket.SHUT_RDWR)

        def _handle(self) -> None:
            path, _, query = self.path.partition("?")
            if proxy.down:
                proxy._record(Seen(self.command, path, query, None, 0, "down"))
                return self._abort()
            body = _read_body(self)
            fault = proxy._fault_for(self.command, path)
            if fault is not None and fault.action == "down":
                proxy.down = True
                proxy._record(Seen(self.command, path, query, None, len(body), "down"))
                return self._abort()
            if fault is not None and fault.action == "stall":
                time.sleep(fault.seconds)
                proxy._record(Seen(self.command, path, query, None, len(body), "stall"))
                return self._abort()
            if fault is not None and fault.action == "status":
                proxy._record(Seen(self.command, path, query, fault.status, len(body), "status"))
                self.send_response(fault.status)
                if fault.retry_after is not None:
                    self.send_header("Retry-After", fault.retry_after)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            upstream = http.client.HTTPConnection(proxy.upstream, timeout=60)
            try:
                upstream.putrequest(self.command, self.path, skip_host=True, skip_accept_encoding=True)
                for name, value in self.headers.items():
                    if name.lower() not in _HOP_BY_HOP and name.lower() != "content-length":
                        upstream.putheader(name, value)
                if body or self.command in ("PUT", "POST", "PATCH"):
                    upstream.putheader("Content-Length", str(len(body)))
                upstream.endheaders()
                if fault is not None and fault.action == "drop":
                    upstream.send(body[: len(body) // 2])
                    time.sleep(0.2)  # let the registry read what it got before the connection goes
                    proxy._record(Seen(self.command, path, query, None, len(body) // 2, "drop"))
                    return self._abort()
                if body:
                    upstream.send(body)
                response = upstream.getresponse()
                data = response.read()
                # Recorded before answering: once the client has its answer, the count includes it.
                proxy._record(Seen(self.command, path, query, response.status, len(body)))
                self.send_response_only(response.status, response.reason)
                for name, value in response.getheaders():
                    if name.lower() not in _HOP_BY_HOP and name.lower() != "content-length":
                        self.send_header(name, value)
                if self.command == "HEAD":
                    self.send_header("Content-Length", response.getheader("Content-Length") or "0")
                else:
                    self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(data)
            finally:
                upstream.close()

        do_GET = do_HEAD = do_PUT = do_POST = do_PATCH = do_DELETE = _handle

    return Handler


@contextlib.contextmanager
def fault_proxy(upstream: str) -> Iterator[FaultProxy]:
    """A proxy on 127.0.0.1 in front of `upstream` (host:port), stopped on exit."""
    proxy = FaultProxy(upstream)
    port = free_port()
    server = ThreadingHTTPServer(("127.0.0.1", port), _handler(proxy))
    server.daemon_threads = True
    proxy.address = f"127.0.0.1:{port}"
    thread = threading.Thread(target=server.serve_forever, name="fault-proxy", daemon=True)
    thread.start()
    try:
        yield proxy
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)
