"""A registry that tries to get credentials sent elsewhere, and tokens that must not leak.

The "registry" here is deliberately not distribution: a real registry never sends an upload
`Location` on another host, so these answers are what a hostile or misconfigured server would send.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Dict, Iterator, List

import pytest
from ocibuild.errors import OciBuildError
from ocibuild.registry.auth import _Token
from ocibuild.registry.client import RegistryClient
from ocibuild.registry.credentials import StaticCredentials

USER, PASSWORD = "ci-bot", "s3cret-Pa55word"
BLOB = b"hello blob"
DIGEST = "sha256:" + hashlib.sha256(BLOB).hexdigest()


@contextlib.contextmanager
def serve(handler: type) -> Iterator[ThreadingHTTPServer]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


def address(server: ThreadingHTTPServer) -> str:
    host, port = server.server_address[0], server.server_address[1]  # type: ignore[misc,index]
    return f"{str(host)}:{int(port)}"


def recording_handler(seen: List[Dict[str, str]]) -> type:
    class Elsewhere(BaseHTTPRequestHandler):
        def do_PUT(self) -> None:  # noqa: N802
            seen.append({k.lower(): v for k, v in self.headers.items()})
            self.rfile.read(int(self.headers.get("Content-Length", 0)))
            self.send_response(201)
            self.send_header("Docker-Content-Digest", DIGEST)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args) -> None:
            pass

    return Elsewhere


def registry_handler(location: str) -> type:
    class Registry(BaseHTTPRequestHandler):
        def _challenge(self) -> bool:
            if self.headers.get("Authorization"):
                return False
            self.send_response(401)
            self.send_header("WWW-Authenticate", 'Basic realm="test"')
            self.send_header("Content-Length", "0")
            self.end_headers()
            return True

        def do_HEAD(self) -> None:  # noqa: N802
            if not self._challenge():
                self.send_response(404)
                self.send_header("Content-Length", "0")
                self.end_headers()

        def do_POST(self) -> None:  # noqa: N802
            if not self._challenge():
                self.send_response(202)
                self.send_header("Location", location)
                self.send_header("Content-Length", "0")
                self.end_headers()

        def log_message(self, *args) -> None:
            pass

    return Registry


def client_for(server: ThreadingHTTPServer) -> RegistryClient:
    return RegistryClient(
        address(server),
        insecure=True,
        credentials=StaticCredentials(USER, PASSWORD),
        timeout=5,
        max_attempts=1,
    )


def test_credentials_are_not_sent_to_another_host_named_by_an_upload_location() -> None:
    seen: List[Dict[str, str]] = []
    with serve(recording_handler(seen)) as elsewhere:
        other = f"http://{address(elsewhere)}/upload?session=1"
        with serve(registry_handler(other)) as registry:
            client_for(registry).upload_blob("app", DIGEST, len(BLOB), BLOB)
    assert len(seen) == 1, seen
    assert "authorization" not in seen[0], "credentials were sent to the Location's host"


def test_an_upload_location_that_changes_scheme_is_refused() -> None:
    with serve(registry_handler("https://127.0.0.1:1/upload")) as registry:
        with pytest.raises(OciBuildError, match="upload Location with another scheme"):
            client_for(registry).upload_blob("app", DIGEST, len(BLOB), BLOB)


def test_tokens_stay_out_of_reprs() -> None:
    token = _Token("eyJ-secret-token", 0.0)
    assert "eyJ-secret-token" not in repr(token)


def bearer_registry_handler(token: str) -> type:
    """Challenges for a bearer token, and serves that token itself (realm on the same server)."""

    class Registry(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802
            body = json.dumps({"token": token}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_HEAD(self) -> None:  # noqa: N802
            realm = f"http://{address(self.server)}/token"  # type: ignore[arg-type]
            self.send_response(401)
            self.send_header("WWW-Authenticate", f'Bearer realm="{realm}",service="test",scope="x"')
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args) -> None:
            pass

    return Registry


def test_a_token_that_cannot_be_a_header_is_one_line_without_the_token() -> None:
    # Sent as is, requests would raise InvalidHeader quoting the whole header, token included.
    with serve(bearer_registry_handler("tok\nSECRET-PART")) as registry:
        with pytest.raises(OciBuildError, match="answered a malformed token") as raised:
            client_for(registry).blob_exists("app", DIGEST)
    assert "SECRET" not in str(raised.value)
