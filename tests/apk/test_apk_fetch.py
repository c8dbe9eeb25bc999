from __future__ import annotations

import contextlib
import hashlib
import http.server
import socket
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Iterator

import pytest
import urllib3
from ocibuild.apk.fetch import Fetcher, Mirrors, file_url
from ocibuild.errors import OciBuildError

UPSTREAM = "https://dl-cdn.example.org/alpine/"


def test_candidates_use_longest_prefix_in_order() -> None:
    mirrors = Mirrors(
        {
            "https://a.example/": ["file:///m1/", "https://a.example/"],
            "https://a.example/keys/": ["file:///keys/"],
        }
    )
    assert mirrors.candidates("https://a.example/x/y.apk") == [
        "file:///m1/x/y.apk",
        "https://a.example/x/y.apk",
    ]
    assert mirrors.candidates("https://a.example/keys/k.pub") == ["file:///keys/k.pub"]
    assert mirrors.candidates("https://b.example/z") == ["https://b.example/z"]


def test_parse_mirror_flags() -> None:
    mirrors = Mirrors.parse(["https://a.example/=file:///m1/,https://a.example/"])
    assert mirrors.candidates("https://a.example/f") == ["file:///m1/f", "https://a.example/f"]
    for bad in ["https://a.example/", "=file:///x/", "https://a.example/="]:
        with pytest.raises(OciBuildError, match="--mirror"):
            Mirrors.parse([bad])


def _two_mirrors(tmp_path: Path) -> Fetcher:
    (tmp_path / "m1").mkdir()
    (tmp_path / "m2" / "v3").mkdir(parents=True)
    return Fetcher(Mirrors({UPSTREAM: [file_url(str(tmp_path / "m1")), file_url(str(tmp_path / "m2"))]}))


def test_file_mirror_fallback_order(tmp_path: Path) -> None:
    fetcher = _two_mirrors(tmp_path)
    (tmp_path / "m2" / "v3" / "a.apk").write_bytes(b"second")
    assert fetcher.fetch(UPSTREAM + "v3/a.apk") == b"second"
    (tmp_path / "m1" / "v3").mkdir()
    (tmp_path / "m1" / "v3" / "a.apk").write_bytes(b"first")
    assert fetcher.fetch(UPSTREAM + "v3/a.apk") == b"first"


def test_missing_everywhere_names_every_candidate(tmp_path: Path) -> None:
    fetcher = _two_mirrors(tmp_path)
    with pytest.raises(OciBuildError) as e:
        fetcher.fetch(UPSTREAM + "v3/none.apk")
    msg = str(e.value)
    assert msg.startswith(f"cannot fetch {UPSTREAM}v3/none.apk: tried ")
    assert msg.count("no such file") == 2 and "m1/v3/none.apk" in msg and "m2/v3/none.apk" in msg
    assert "\n" not in msg


def test_size_and_sha256_mismatch_move_on_then_fail(tmp_path: Path) -> None:
    fetcher = _two_mirrors(tmp_path)
    (tmp_path / "m1" / "v3").mkdir()
    (tmp_path / "m1" / "v3" / "a.apk").write_bytes(b"corrupt")
    (tmp_path / "m2" / "v3" / "a.apk").write_bytes(b"good bytes")
    good = hashlib.sha256(b"good bytes").hexdigest()
    assert fetcher.fetch(UPSTREAM + "v3/a.apk", sha256=good) == b"good bytes"
    assert fetcher.fetch(UPSTREAM + "v3/a.apk", size=10) == b"good bytes"
    with pytest.raises(OciBuildError, match="size 7 but expected 11.*size 10 but expected 11"):
        fetcher.fetch(UPSTREAM + "v3/a.apk", size=11)
    with pytest.raises(OciBuildError, match=f"sha256 {good} but expected 0000"):
        fetcher.fetch(UPSTREAM + "v3/a.apk", sha256="0" * 64)


def test_unsupported_scheme() -> None:
    with pytest.raises(OciBuildError, match="unsupported URL scheme 'ftp'"):
        Fetcher().fetch("ftp://example.org/x")


# ---- a real HTTP server on 127.0.0.1 -------------------------------------------------------------


class _Handler(http.server.SimpleHTTPRequestHandler):
    hits: Counter = Counter()
    fail_first: dict = {}  # path -> number of 500 answers before serving it
    truncate: set = set()  # paths answered with a Content-Length longer than the body
    slow: set = set()  # paths answered after a second (past the test's timeout)

    def log_message(self, *args) -> None:  # keep test output quiet
        pass

    def do_GET(self) -> None:
        self.hits[self.path] += 1
        if self.hits[self.path] <= self.fail_first.get(self.path, 0):
            self.send_error(500, "induced failure")
            return
        if self.path in self.slow:
            time.sleep(1)
        if self.path in self.truncate:
            self.send_response(200)
            self.send_header("Content-Length", "1000")
            self.end_headers()
            self.wfile.write(b"only a little")
            self.close_connection = True
            return
        super().do_GET()


class _QuietServer(http.server.ThreadingHTTPServer):
    def handle_error(self, request, client_address) -> None:  # a client that timed out closed the socket
        pass


@contextlib.contextmanager
def _serve(root: Path) -> Iterator[str]:
    _Handler.hits = Counter()
    _Handler.fail_first = {}
    _Handler.truncate = set()
    _Handler.slow = set()

    def handler(*args, **kwargs):
        return _Handler(*args, directory=str(root), **kwargs)

    server = _QuietServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def test_http_404_on_first_mirror_falls_through_to_second(tmp_path: Path) -> None:
    (tmp_path / "one").mkdir()
    (tmp_path / "two" / "v3").mkdir(parents=True)
    (tmp_path / "two" / "v3" / "a.apk").write_bytes(b"from two")
    with _serve(tmp_path) as base:
        fetcher = Fetcher(Mirrors({UPSTREAM: [base + "one/", base + "two/"]}), timeout=5, backoff=0)
        assert fetcher.fetch(UPSTREAM + "v3/a.apk", size=8) == b"from two"
        assert _Handler.hits == Counter({"/one/v3/a.apk": 1, "/two/v3/a.apk": 1})  # a 404 is not retried


def test_http_500_is_retried(tmp_path: Path) -> None:
    (tmp_path / "a.apk").write_bytes(b"payload")
    with _serve(tmp_path) as base:
        _Handler.fail_first = {"/a.apk": 2}
        fetcher = Fetcher(Mirrors({UPSTREAM: [base]}), timeout=5, retries=3, backoff=0)
        assert fetcher.fetch(UPSTREAM + "a.apk") == b"payload"
        assert _Handler.hits["/a.apk"] == 3


def test_http_500_beyond_retries_fails_naming_the_url(tmp_path: Path) -> None:
    (tmp_path / "a.apk").write_bytes(b"payload")
    with _serve(tmp_path) as base:
        _Handler.fail_first = {"/a.apk": 5}
        fetcher = Fetcher(Mirrors({UPSTREAM: [base]}), timeout=5, retries=2, backoff=0)
        with pytest.raises(
            OciBuildError, match=rf"cannot fetch {UPSTREAM}a.apk: tried {base}a.apk: HTTP 500 \(after 2"
        ):
            fetcher.fetch(UPSTREAM + "a.apk")
        assert _Handler.hits["/a.apk"] == 2


def test_truncated_http_download_is_an_error(tmp_path: Path) -> None:
    with _serve(tmp_path) as base:
        _Handler.truncate = {"/a.apk"}
        fetcher = Fetcher(Mirrors({UPSTREAM: [base]}), timeout=5, retries=2, backoff=0)
        with pytest.raises(OciBuildError, match=f"cannot fetch {UPSTREAM}a.apk"):
            fetcher.fetch(UPSTREAM + "a.apk")
        assert _Handler.hits["/a.apk"] == 2


# ---- a dead mirror is given up once per run --------------------------------------------------------


def _closed_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()  # nothing listens there: a connection is refused
    return port


@pytest.fixture
def connect_attempts(monkeypatch) -> Counter:
    """Count the TCP connections urllib3 really tries to make, by (host, port)."""
    counts: Counter = Counter()
    real = urllib3.util.connection.create_connection

    def counting(address, *args, **kwargs):
        counts[address] += 1
        return real(address, *args, **kwargs)

    monkeypatch.setattr(urllib3.util.connection, "create_connection", counting)
    return counts


FILES = [f"v3/pkg-{i}.apk" for i in range(6)]


def _files(root: Path) -> None:
    (root / "v3").mkdir(parents=True)
    for name in FILES:
        (root / name).write_bytes(name.encode())


def test_refused_mirror_is_contacted_once_not_once_per_file(tmp_path: Path, connect_attempts) -> None:
    _files(tmp_path)
    dead = _closed_port()
    with _serve(tmp_path) as base:
        fetcher = Fetcher(
            Mirrors({UPSTREAM: [f"http://127.0.0.1:{dead}/", base]}), timeout=5, retries=3, backoff=0.2
        )
        for name in FILES:
            assert fetcher.fetch(UPSTREAM + name) == name.encode()
        assert connect_attempts[("127.0.0.1", dead)] == 1  # not 3 (retries) per file, not once per file
        assert _Handler.hits == Counter({f"/{name}": 1 for name in FILES})
        # When the live mirror lacks a file too, the error still names the skipped one and why.
        with pytest.raises(OciBuildError) as e:
            fetcher.fetch(UPSTREAM + "v3/none.apk")
    assert str(e.value) == (
        f"cannot fetch {UPSTREAM}v3/none.apk: tried http://127.0.0.1:{dead}/v3/none.apk: skipped"
        f" (http://127.0.0.1:{dead} connection refused earlier in this run); {base}v3/none.apk: HTTP 404"
    )
    assert connect_attempts[("127.0.0.1", dead)] == 1


def test_a_refused_mirror_is_skipped_only_by_that_fetcher(tmp_path: Path, connect_attempts) -> None:
    _files(tmp_path)
    dead = _closed_port()
    with _serve(tmp_path) as base:
        mirrors = Mirrors({UPSTREAM: [f"http://127.0.0.1:{dead}/", base]})
        for _ in range(2):  # two runs: each gives the dead mirror one chance
            fetcher = Fetcher(mirrors, timeout=5, retries=3, backoff=0)
            for name in FILES[:3]:
                assert fetcher.fetch(UPSTREAM + name) == name.encode()
    assert connect_attempts[("127.0.0.1", dead)] == 2


def test_unresolvable_mirror_is_looked_up_once(tmp_path: Path, monkeypatch) -> None:
    _files(tmp_path)
    lookups: Counter = Counter()
    real = socket.getaddrinfo

    def getaddrinfo(host, *args, **kwargs):
        lookups[host] += 1
        if host == "mirror.invalid":  # what the resolver answers for a name that does not exist
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return real(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    with _serve(tmp_path) as base:
        fetcher = Fetcher(Mirrors({UPSTREAM: ["http://mirror.invalid/", base]}), timeout=5, backoff=0.2)
        for name in FILES:
            assert fetcher.fetch(UPSTREAM + name) == name.encode()
    assert lookups["mirror.invalid"] == 1


def test_500_and_timeouts_are_still_retried_for_every_file(tmp_path: Path) -> None:
    _files(tmp_path)
    with _serve(tmp_path) as base:
        _Handler.fail_first = {f"/{name}": 99 for name in FILES[:2]}
        _Handler.slow = {f"/{name}" for name in FILES[2:4]}
        fetcher = Fetcher(Mirrors({UPSTREAM: [base]}), timeout=0.3, retries=2, backoff=0)
        for name in FILES[:4]:
            with pytest.raises(OciBuildError, match="after 2 attempts"):
                fetcher.fetch(UPSTREAM + name)
        assert fetcher.fetch(UPSTREAM + FILES[4]) == FILES[4].encode()  # the host was not given up
    assert [_Handler.hits[f"/{name}"] for name in FILES] == [2, 2, 2, 2, 1, 0]
