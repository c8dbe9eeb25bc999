from __future__ import annotations

import contextlib
import hashlib
import http.server
import threading
from collections import Counter
from pathlib import Path
from typing import Iterator

import pytest
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

    def log_message(self, *args) -> None:  # keep test output quiet
        pass

    def do_GET(self) -> None:
        self.hits[self.path] += 1
        if self.hits[self.path] <= self.fail_first.get(self.path, 0):
            self.send_error(500, "induced failure")
            return
        if self.path in self.truncate:
            self.send_response(200)
            self.send_header("Content-Length", "1000")
            self.end_headers()
            self.wfile.write(b"only a little")
            self.close_connection = True
            return
        super().do_GET()


@contextlib.contextmanager
def _serve(root: Path) -> Iterator[str]:
    _Handler.hits = Counter()
    _Handler.fail_first = {}
    _Handler.truncate = set()

    def handler(*args, **kwargs):
        return _Handler(*args, directory=str(root), **kwargs)

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
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
