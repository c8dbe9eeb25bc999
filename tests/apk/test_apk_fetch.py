from __future__ import annotations

import contextlib
import hashlib
import http.server
import socket
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Iterator, List

import pytest
import urllib3  # pants: no-infer-dep (comes with requests, which ocibuild needs)
from ocibuild.apk.fetch import Fetcher, Mirrors, file_url
from ocibuild.apk.locker import lock
from ocibuild.apk.spec import load_spec
from ocibuild.errors import OciBuildError
from testutil.paths import apk_mirror

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


def test_a_temporary_dns_failure_is_retried_not_given_up(tmp_path: Path, monkeypatch) -> None:
    _files(tmp_path)
    lookups: Counter = Counter()
    real = socket.getaddrinfo

    def getaddrinfo(host, *args, **kwargs):
        lookups[host] += 1
        if host == "flaky.example" and lookups[host] == 1:  # the resolver hiccups once
            raise socket.gaierror(socket.EAI_AGAIN, "Temporary failure in name resolution")
        return real("127.0.0.1" if host == "flaky.example" else host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    with _serve(tmp_path) as base:
        flaky = base.replace("127.0.0.1", "flaky.example")
        fetcher = Fetcher(Mirrors({UPSTREAM: [flaky]}), timeout=5, retries=3, backoff=0)
        for name in FILES[:3]:
            assert fetcher.fetch(UPSTREAM + name) == name.encode()
        assert [_Handler.hits[f"/{name}"] for name in FILES[:3]] == [1, 1, 1]
    assert lookups["flaky.example"] >= 4  # looked up again after the failure, and for each file


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


# ---- bytes that fail the caller's check move on to the next mirror ---------------------------------


def test_validate_rejects_a_copy_and_the_next_mirror_is_used(tmp_path: Path) -> None:
    fetcher = _two_mirrors(tmp_path)
    (tmp_path / "m1" / "v3").mkdir()
    (tmp_path / "m1" / "v3" / "a.apk").write_bytes(b"bad copy")
    (tmp_path / "m2" / "v3" / "a.apk").write_bytes(b"good copy")
    seen = []

    def validate(data: bytes, source: str) -> str:
        seen.append(source)
        if data != b"good copy":
            raise OciBuildError(f"{UPSTREAM}v3/a.apk: checksum mismatch; fix or refresh the mirror")
        return "parsed"

    assert fetcher.fetch_validated(UPSTREAM + "v3/a.apk", validate) == (b"good copy", "parsed")
    assert fetcher.fetch(UPSTREAM + "v3/a.apk", validate=validate) == b"good copy"
    m1, m2 = (file_url(str(tmp_path / m)) + "v3/a.apk" for m in ("m1", "m2"))
    assert seen == [m1, m2, m1, m2]

    (tmp_path / "m2" / "v3" / "a.apk").write_bytes(b"also bad")
    with pytest.raises(OciBuildError) as e:
        fetcher.fetch(UPSTREAM + "v3/a.apk", validate=validate)
    assert str(e.value) == (
        f"cannot fetch {UPSTREAM}v3/a.apk: tried {m1}: served bytes that fail verification: checksum mismatch;"
        f" fix or refresh the mirror; {m2}: served bytes that fail verification: checksum mismatch;"
        " fix or refresh the mirror"
    )


ALPINE = "https://dl-cdn.alpinelinux.org/alpine/"
ALPINE_MAIN = "v3.19/main/x86_64"
ALPINE_KEY = "alpine-devel@lists.alpinelinux.org-6165ee59.rsa.pub"
TAMPERED = "alpine-release-3.19.1-r0.apk"


def _alpine_mirror(root: Path, tamper: bool) -> None:
    """A mirror of the real index and the two packages of `alpine-release`, one of them maybe tampered."""
    source = apk_mirror() / "alpine" / ALPINE_MAIN
    (root / ALPINE_MAIN).mkdir(parents=True)
    for name in ["APKINDEX.tar.gz", TAMPERED, "alpine-keys-2.4-r1.apk"]:
        data = bytearray((source / name).read_bytes())
        if tamper and name == TAMPERED:
            data[len(data) - 100] ^= 0x01  # same size, one bit flipped in the data member
        (root / ALPINE_MAIN / name).write_bytes(bytes(data))


def _lock_alpine_release(mirrors: List[str]):
    spec_text = (
        f"contents:\n  repositories: [{ALPINE}v3.19/main]\n  keyring: [{ALPINE_KEY}]\n"
        "  packages: [alpine-release]\narchs: [x86_64]\n"
    )
    fetcher = Fetcher(Mirrors({ALPINE: mirrors}), timeout=5, backoff=0)
    spec = load_spec(spec_text, "apko.yaml")
    return lock(spec, spec_text.encode(), "apko.yaml", fetcher, str(apk_mirror() / "keys"))


def test_lock_falls_through_a_tampered_package_to_the_next_mirror(tmp_path: Path) -> None:
    _alpine_mirror(tmp_path / "bad", tamper=True)
    _alpine_mirror(tmp_path / "good", tamper=False)
    with _serve(tmp_path) as base:
        locked = _lock_alpine_release([base + "bad/", base + "good/"])
        assert _Handler.hits[f"/bad/{ALPINE_MAIN}/{TAMPERED}"] == 1
        assert _Handler.hits[f"/good/{ALPINE_MAIN}/{TAMPERED}"] == 1
        assert _Handler.hits[f"/good/{ALPINE_MAIN}/APKINDEX.tar.gz"] == 0  # the first mirror's index was fine
    (package,) = [p for p in locked.packages if p.name == "alpine-release"]
    real = (apk_mirror() / "alpine" / ALPINE_MAIN / TAMPERED).read_bytes()
    assert (package.url, package.sha256, package.size) == (
        f"{ALPINE}{ALPINE_MAIN}/{TAMPERED}",  # the lock records the upstream URL, not a mirror's
        hashlib.sha256(real).hexdigest(),
        len(real),
    )


def test_lock_fails_naming_every_mirror_that_served_bad_bytes(tmp_path: Path) -> None:
    _alpine_mirror(tmp_path / "one", tamper=True)
    _alpine_mirror(tmp_path / "two", tamper=True)
    with _serve(tmp_path) as base:
        with pytest.raises(OciBuildError) as e:
            _lock_alpine_release([base + "one/", base + "two/"])
    msg = str(e.value)
    assert "\n" not in msg
    assert msg.startswith(f"cannot fetch {ALPINE}{ALPINE_MAIN}/{TAMPERED}: tried ")
    for mirror in ("one", "two"):
        assert f"{base}{mirror}/{ALPINE_MAIN}/{TAMPERED}: served bytes that fail verification: " in msg
    assert msg.count("served bytes that fail verification") == 2 and msg.count("the file is corrupt") == 2


def test_lock_falls_through_a_corrupt_index_to_the_next_mirror(tmp_path: Path) -> None:
    _alpine_mirror(tmp_path / "bad", tamper=False)
    _alpine_mirror(tmp_path / "good", tamper=False)
    index = tmp_path / "bad" / ALPINE_MAIN / "APKINDEX.tar.gz"
    data = bytearray(index.read_bytes())
    data[len(data) // 2] ^= 0x01
    index.write_bytes(bytes(data))
    with _serve(tmp_path) as base:
        locked = _lock_alpine_release([base + "bad/", base + "good/"])
        assert _Handler.hits[f"/good/{ALPINE_MAIN}/APKINDEX.tar.gz"] == 1
    assert sorted(p.name for p in locked.packages) == ["alpine-keys", "alpine-release"]


def test_lock_falls_through_a_broken_key_to_the_next_mirror(tmp_path: Path) -> None:
    keys_url = "https://alpinelinux.org/keys/"
    real_key = (apk_mirror() / "keys" / ALPINE_KEY).read_bytes()
    for mirror, pem in (("bad", real_key.replace(b"PUBLIC KEY", b"PRIVATE KEY")), ("good", real_key)):
        _alpine_mirror(tmp_path / mirror, tamper=False)
        (tmp_path / mirror / "keys").mkdir()
        (tmp_path / mirror / "keys" / ALPINE_KEY).write_bytes(pem)
    spec_text = (
        f"contents:\n  repositories: [{ALPINE}v3.19/main]\n  keyring: [{keys_url}{ALPINE_KEY}]\n"
        "  packages: [alpine-release]\narchs: [x86_64]\n"
    )
    with _serve(tmp_path) as base:
        fetcher = Fetcher(
            Mirrors({ALPINE: [base + "good/"], keys_url: [base + "bad/keys/", base + "good/keys/"]}),
            timeout=5,
            backoff=0,
        )
        locked = lock(
            load_spec(spec_text, "apko.yaml"), spec_text.encode(), "apko.yaml", fetcher, str(tmp_path)
        )
        assert (
            _Handler.hits[f"/bad/keys/{ALPINE_KEY}"] == 1 and _Handler.hits[f"/good/keys/{ALPINE_KEY}"] == 1
        )
    (key,) = locked.keys
    assert key.url == keys_url + ALPINE_KEY and key.pem == real_key
