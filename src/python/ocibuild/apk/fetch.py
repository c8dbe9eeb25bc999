"""Download files by their upstream URL, trying configured mirrors in order (like Bazel's downloader config).

The lockfile always records upstream URLs; mirrors only change where the bytes come from, so a lock
made against a local file:// mirror is the same lock as one made against the internet.

A candidate URL is given up for the next one when it does not have the file (404, missing file),
when its bytes are wrong (size, sha256, or the caller's `validate` check), or when it keeps failing
(5xx, timeouts, short reads: retried with backoff first). A host that refuses the connection or
whose name does not resolve is given up at once and skipped for the rest of the Fetcher's life.
"""

from __future__ import annotations

import errno
import os
import socket
import threading
import time
import urllib.parse
from typing import Callable, Dict, List, Optional, Tuple, TypeVar

import requests
import urllib3  # pants: no-infer-dep (installed with requests, which wraps it)
from ocibuild.apk.mirrors import Mirrors
from ocibuild.common.digests import sha256_hex
from ocibuild.errors import OciBuildError

__all__ = [
    "Fetcher",
    "file_url",
]


class _Retryable(Exception):
    """A failure worth trying the same URL again (connection trouble, 5xx, short read)."""


class _NotThere(Exception):
    """A failure that moves on to the next mirror at once (404, missing file, wrong bytes)."""


class _Unreachable(Exception):
    """The host refused the connection or its name did not resolve: skip it for the rest of the run."""


# Answers that will not change within a run: nothing listens there, or the name does not exist.
# A temporary DNS failure (EAI_AGAIN) or an unreachable network may be a flap: retried instead.
_PERMANENT_DNS_ERRORS = {socket.EAI_NONAME, getattr(socket, "EAI_NODATA", socket.EAI_NONAME)}


def _unreachable_reason(error: BaseException) -> Optional[str]:
    """'connection refused' or 'name not resolved' if that is what lies under a requests/urllib3 error."""
    seen = set()
    todo: List[BaseException] = [error]
    while todo:
        e = todo.pop()
        if id(e) in seen:
            continue
        seen.add(id(e))
        if isinstance(e, socket.gaierror):
            return "name not resolved" if e.errno in _PERMANENT_DNS_ERRORS else None
        if isinstance(e, OSError) and e.errno == errno.ECONNREFUSED:
            return "connection refused"
        todo.extend(x for x in (e.__cause__, e.__context__, getattr(e, "reason", None)) if x is not None)
        todo.extend(a for a in e.args if isinstance(a, BaseException))
    return None


def _host_of(url: str) -> str:
    parsed = urllib.parse.urlsplit(url)
    return f"{parsed.scheme}://{parsed.netloc}"


T = TypeVar("T")


def _file_path(url: str) -> str:
    parsed = urllib.parse.urlsplit(url)
    if parsed.netloc not in ("", "localhost"):
        raise _NotThere(f"file URL with host {parsed.netloc!r} is not supported")
    return urllib.parse.unquote(parsed.path)


class Fetcher:
    def __init__(
        self, mirrors: Optional[Mirrors] = None, timeout: float = 30, retries: int = 3, backoff: float = 0.5
    ) -> None:
        self.mirrors = mirrors or Mirrors()
        self.timeout = timeout
        self.retries = max(1, retries)  # attempts per candidate URL for retryable failures
        self.backoff = backoff
        self._session: Optional[requests.Session] = None
        self._unreachable: Dict[str, str] = {}  # "scheme://host:port" -> why it is skipped
        self._lock = threading.Lock()

    def fetch(
        self,
        url: str,
        *,
        sha256: Optional[str] = None,
        size: Optional[int] = None,
        validate: Optional[Callable[[bytes, str], object]] = None,
    ) -> bytes:
        """The bytes of `url` from the first candidate that has them and whose bytes pass the checks.

        Checks: `size` and `sha256` when given, then `validate(data, source)` (source: the candidate
        URL that served the bytes), which raises OciBuildError to reject them: the next candidate is
        tried. When every candidate fails, the one-line error names each and what was wrong with it.
        """
        return self.fetch_validated(url, validate or _accept, sha256=sha256, size=size)[0]

    def fetch_validated(
        self,
        url: str,
        validate: Callable[[bytes, str], T],
        *,
        sha256: Optional[str] = None,
        size: Optional[int] = None,
    ) -> Tuple[bytes, T]:
        """`fetch`, returning the bytes and what `validate` returned for them (e.g. the parsed file)."""
        failures: List[str] = []
        for candidate in self.mirrors.candidates(url):
            host = _host_of(candidate)
            with self._lock:
                skipped = self._unreachable.get(host)
            if skipped is not None:
                failures.append(f"{candidate}: skipped ({host} {skipped} earlier in this run)")
                continue
            try:
                data = self._fetch_one(candidate)
                _check(data, sha256, size)
            except (_NotThere, _Retryable) as e:
                failures.append(f"{candidate}: {e}")
                continue
            except _Unreachable as e:
                with self._lock:
                    self._unreachable.setdefault(host, str(e))
                failures.append(f"{candidate}: {e}")
                continue
            try:
                return data, validate(data, candidate)
            except OciBuildError as e:
                failures.append(
                    f"{candidate}: served bytes that fail verification: {_strip_origin(e, url, candidate)}"
                )
        raise OciBuildError(f"cannot fetch {url}: tried {'; '.join(failures)}")

    def _fetch_one(self, url: str) -> bytes:
        scheme = urllib.parse.urlsplit(url).scheme
        if scheme == "file":
            path = _file_path(url)
            try:
                with open(path, "rb") as f:
                    return f.read()
            except FileNotFoundError:
                raise _NotThere("no such file") from None
            except OSError as e:
                raise _NotThere(e.strerror or str(e)) from None
        if scheme in ("http", "https"):
            last: Optional[Exception] = None
            for attempt in range(self.retries):
                if attempt:
                    time.sleep(self.backoff * 2 ** (attempt - 1))
                try:
                    return self._http_get(url)
                except _Retryable as e:  # _Unreachable is not retried: the host is not there at all
                    last = e
            raise _Retryable(f"{last} (after {self.retries} attempts)")
        raise _NotThere(f"unsupported URL scheme {scheme!r}")

    def _http_get(self, url: str) -> bytes:
        if self._session is None:
            self._session = requests.Session()
        try:
            with self._session.get(url, timeout=self.timeout, stream=True) as response:
                if response.status_code >= 500:
                    raise _Retryable(f"HTTP {response.status_code}")
                if response.status_code != 200:
                    raise _NotThere(f"HTTP {response.status_code}")
                # The raw bytes: a server's Content-Encoding must not turn a .tar.gz into a .tar.
                data = response.raw.read(decode_content=False)
                expected = response.headers.get("Content-Length", "")
        except (requests.RequestException, urllib3.exceptions.HTTPError) as e:
            reason = _unreachable_reason(e)
            if reason is not None:
                raise _Unreachable(reason) from None
            detail = (str(e).splitlines() or [""])[0][:200]
            raise _Retryable(f"{type(e).__name__} ({detail})" if detail else type(e).__name__) from None
        if expected.isdigit() and int(expected) != len(data):
            raise _Retryable(f"short read: {len(data)} of {expected} bytes")
        return data


def _accept(data: bytes, source: str) -> None:
    return None


def _strip_origin(error: OciBuildError, *origins: str) -> str:
    """The validator's message without a leading `<url>: ` the failure list already shows."""
    message = str(error)
    for origin in origins:
        if message.startswith(origin + ": "):
            return message[len(origin) + 2 :]
    return message


def _check(data: bytes, sha256: Optional[str], size: Optional[int]) -> None:
    if size is not None and len(data) != size:
        raise _NotThere(f"size {len(data)} but expected {size}")
    if sha256 is not None:
        actual = sha256_hex(data)
        if actual != sha256:
            raise _NotThere(f"sha256 {actual} but expected {sha256}")


def file_url(path: str) -> str:
    """A file:// URL for a local folder, with the trailing slash a mirror prefix needs."""
    url = "file://" + urllib.parse.quote(os.path.abspath(path))
    return url if url.endswith("/") else url + "/"
