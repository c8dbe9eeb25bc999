"""A small OCI distribution client over `requests`: byte-exact manifests, blob uploads, retries.

What it guarantees:
- manifests go out as the exact bytes given, with their own media type, and the registry's
  `Docker-Content-Digest` must equal the sha256 of those bytes; what comes back is verified likewise;
- a blob is uploaded only after a HEAD says it is missing; a cross-repository mount is tried first when
  another repository of the registry may have it; small blobs go in one PUT, large ones in PATCH chunks
  that resume from the registry's `Range` after a failure;
- connection errors, timeouts, 429 (after its `Retry-After`) and 5xx are retried with exponential
  backoff and jitter; 401/403/404 become one line naming the registry, the repository and what to check;
- no secret is ever logged or put in an error (credentials and tokens only travel in headers).
"""

from __future__ import annotations

import email.utils
import json
import random
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Callable, Dict, List, Optional, Sequence, Tuple, Union
from urllib.parse import urljoin, urlsplit

import requests
from ocibuild.common.digests import sha256_digest
from ocibuild.errors import OciBuildError
from ocibuild.registry.auth import Authorizer
from ocibuild.registry.credentials import Credentials, CredentialSource

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_MANIFEST_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
ALL_MANIFEST_TYPES = (OCI_MANIFEST, OCI_INDEX, DOCKER_MANIFEST, DOCKER_MANIFEST_LIST)

DEFAULT_CHUNK_THRESHOLD = 32 << 20  # blobs above this go in PATCH chunks
DEFAULT_CHUNK_SIZE = 16 << 20
_MAX_RETRY_AFTER = 120.0  # seconds; a longer Retry-After is capped rather than obeyed
# Transient: retried. A cut mid-response is one too (ChunkedEncodingError, ContentDecodingError).
_TRANSPORT_ERRORS = (
    requests.ConnectionError,
    requests.Timeout,
    requests.exceptions.ChunkedEncodingError,
    requests.exceptions.ContentDecodingError,
)

Source = Union[Path, bytes]
Body = Optional[Callable[[], Union[bytes, IO[bytes]]]]


@dataclass(frozen=True)
class Manifest:
    media_type: str
    data: bytes
    digest: str  # sha256 of `data`, checked against what the registry said


@dataclass
class RequestStats:
    """What went over the wire: for the benchmark and for tests that count requests."""

    requests: int = 0
    bytes_sent: int = 0
    by_method: Dict[str, int] = field(default_factory=dict)


class _Transient(Exception):
    """A failure worth retrying (connection, timeout, 429, 5xx), for callers that resume themselves."""

    def __init__(self, problem: str, delay: Optional[float]) -> None:
        super().__init__(problem)
        self.problem = problem
        self.delay = delay


class _Restart(Exception):
    """The upload session is gone (or out of step): start a new one."""


def short_digest(digest: str) -> str:
    return digest[: len("sha256:") + 12]


def pull_scope(repository: str) -> str:
    return f"repository:{repository}:pull"


def push_scope(repository: str) -> str:
    return f"repository:{repository}:pull,push"


def _retry_after(response: requests.Response) -> Optional[float]:
    value = response.headers.get("Retry-After")
    if not value:
        return None
    try:
        return min(max(float(value), 0.0), _MAX_RETRY_AFTER)
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value).timestamp()
    except (TypeError, ValueError):
        return None
    return min(max(when - time.time(), 0.0), _MAX_RETRY_AFTER)


def _registry_error(response: requests.Response) -> str:
    """` (CODE: message)` from the registry's JSON error body, on one line, if it has one."""
    try:
        errors = response.json().get("errors") or []
        first = errors[0]
        text = f"{first.get('code', '')}: {first.get('message', '')}".strip(": ")
    except (ValueError, AttributeError, IndexError, TypeError):
        return ""
    text = " ".join(text.split())[:200]
    return f" ({text})" if text else ""


def _range_end(response: requests.Response) -> Optional[int]:
    """The last byte offset the registry holds, from `Range: 0-N` (None when it sent none)."""
    value = response.headers.get("Range", "")
    start, sep, end = value.replace("bytes=", "").partition("-")
    try:
        return int(end) if sep and int(start) == 0 else None
    except ValueError:
        return None


def _read_range(source: Source, start: int, end: int) -> bytes:
    if isinstance(source, bytes):
        return source[start:end]
    with open(source, "rb") as f:
        f.seek(start)
        return f.read(end - start)


class RegistryClient:
    def __init__(
        self,
        registry: str,
        *,
        insecure: bool = False,
        credentials: Optional[CredentialSource] = None,
        timeout: float = 60.0,
        max_attempts: int = 5,
        log: Optional[Callable[[str], None]] = None,
        chunk_threshold: int = DEFAULT_CHUNK_THRESHOLD,
        chunk_size: int = DEFAULT_CHUNK_SIZE,
        backoff: float = 0.5,
        max_backoff: float = 30.0,
    ) -> None:
        self.registry = registry
        host = "registry-1.docker.io" if registry in ("docker.io", "index.docker.io") else registry
        self.base_url = f"{'http' if insecure else 'https'}://{host}"
        self.timeout = timeout
        self.max_attempts = max(1, max_attempts)
        self.chunk_threshold = chunk_threshold
        self.chunk_size = max(1, chunk_size)
        self.backoff = backoff
        self.max_backoff = max_backoff
        self.stats = RequestStats()
        self._log = log or (lambda line: None)
        self._session = requests.Session()
        self._session.headers["User-Agent"] = "ocibuild"
        self._auth = Authorizer(registry, credentials, self._fetch_token)

    # ---- transport ------------------------------------------------------------------------------

    def _url(self, path: str) -> str:
        return self.base_url + path

    def _once(
        self,
        method: str,
        url: str,
        authorization: Optional[str],
        headers: Optional[Dict[str, str]],
        body: Body,
        params: Optional[Dict[str, str]],
    ) -> requests.Response:
        all_headers = dict(headers or {})
        # Credentials go only to the registry itself (scheme and host:port), never to another host an
        # upload `Location` names, nor over http when the registry is https.
        if authorization and _origin(url) == _origin(self.base_url):
            all_headers["Authorization"] = authorization
        data = body() if body is not None else None
        try:
            self.stats.requests += 1
            self.stats.by_method[method] = self.stats.by_method.get(method, 0) + 1
            if isinstance(data, bytes):
                self.stats.bytes_sent += len(data)
            elif data is not None:
                self.stats.bytes_sent += int(all_headers.get("Content-Length", 0))
            return self._session.request(
                method,
                url,
                headers=all_headers,
                data=data,
                params=params,
                timeout=(self.timeout, self.timeout),
                # Redirects (blob storage) keep no Authorization header across hosts: requests drops it.
                allow_redirects=method in ("GET", "HEAD"),
            )
        except _TRANSPORT_ERRORS:
            raise
        except requests.RequestException as e:
            # Anything else requests raises may quote a header (an Authorization value): name its type only.
            raise OciBuildError(
                f"{self.registry}: {method} {urlsplit(url).path} could not be sent ({type(e).__name__})"
            ) from None
        finally:
            if data is not None and not isinstance(data, bytes):
                data.close()

    def _authorized(
        self,
        method: str,
        url: str,
        scopes: Tuple[str, ...],
        repository: str,
        headers: Optional[Dict[str, str]],
        body: Body,
        params: Optional[Dict[str, str]],
    ) -> requests.Response:
        response = self._once(method, url, self._auth.header(scopes), headers, body, params)
        if response.status_code == 401 and self._auth.answer(response, scopes, repository):
            response.close()
            response = self._once(method, url, self._auth.header(scopes), headers, body, params)
        return response

    def _send(
        self,
        method: str,
        url: str,
        *,
        repository: str,
        scopes: Tuple[str, ...],
        what: str,
        headers: Optional[Dict[str, str]] = None,
        body: Body = None,
        params: Optional[Dict[str, str]] = None,
        retry: bool = True,
    ) -> requests.Response:
        """One request, retried on transient failures; with retry=False those raise _Transient instead.

        After the last attempt a 429/5xx response is returned for the caller's error message.
        """
        attempt = 0
        while True:
            attempt += 1
            delay: Optional[float] = None
            try:
                response = self._authorized(method, url, scopes, repository, headers, body, params)
            except _TRANSPORT_ERRORS as e:
                problem = _transport_problem(e)
                if not retry:
                    raise _Transient(problem, None) from None
                if attempt >= self.max_attempts:
                    raise OciBuildError(
                        f"{self.registry}: {what} in {repository} failed after {attempt} attempts ({problem}): "
                        "check that the registry is up and reachable"
                    ) from None
            else:
                if response.status_code != 429 and response.status_code < 500:
                    return response
                problem = f"HTTP {response.status_code}"
                delay = _retry_after(response) if response.status_code == 429 else None
                if not retry:
                    response.close()
                    raise _Transient(problem, delay)
                if attempt >= self.max_attempts:
                    return response
                response.close()
            self._pause(attempt, delay, f"{what} in {repository}: {problem}")

    def _pause(self, attempt: int, delay: Optional[float], problem: str) -> None:
        if delay is None:
            # Exponential backoff with jitter, so that many clients do not retry in step.
            delay = min(self.max_backoff, self.backoff * (2 ** (attempt - 1))) * random.uniform(0.5, 1.0)
        self._log(
            f"{self.registry}: {problem}; retrying in {delay:.1f}s (attempt {attempt + 1}/{self.max_attempts})"
        )
        time.sleep(delay)

    def _fetch_token(
        self, realm: str, params: List[Tuple[str, str]], credentials: Optional[Credentials]
    ) -> requests.Response:
        attempt = 0
        while True:
            attempt += 1
            try:
                self.stats.requests += 1
                response = self._session.get(
                    realm,
                    params=params,
                    auth=(credentials.username, credentials.password) if credentials else None,
                    timeout=(self.timeout, self.timeout),
                )
            except requests.RequestException as e:
                if not isinstance(e, _TRANSPORT_ERRORS):
                    raise OciBuildError(
                        f"{self.registry}: its token service {urlsplit(realm).netloc} could not be asked "
                        f"({type(e).__name__})"
                    ) from None
                problem = _transport_problem(e)
                if attempt >= self.max_attempts:
                    raise OciBuildError(
                        f"{self.registry}: its token service {realm.split('/')[2]} failed after {attempt} attempts "
                        f"({problem}): check that it is up and reachable"
                    ) from None
                self._pause(attempt, None, f"token request: {problem}")
                continue
            if (response.status_code == 429 or response.status_code >= 500) and attempt < self.max_attempts:
                self._pause(attempt, _retry_after(response), f"token request: HTTP {response.status_code}")
                continue
            return response

    def _fail(self, response: requests.Response, repository: str, what: str) -> OciBuildError:
        status = response.status_code
        detail = _registry_error(response)
        where = f"{self.registry}: {what} in {repository}"
        credentials = self._auth.credentials
        if status == 401:
            if credentials is None:
                return OciBuildError(
                    f"{where} needs credentials (HTTP 401{detail}): run `docker login {self.registry}` or set "
                    "OCI_REGISTRY_USERNAME and OCI_REGISTRY_PASSWORD"
                )
            return OciBuildError(
                f"{where}: the registry refused the credentials of {credentials.username!r} from {credentials.origin} "
                f"(HTTP 401{detail}): check the username and password"
            )
        if status == 403:
            who = f"user {credentials.username!r}" if credentials else "anonymous access"
            return OciBuildError(
                f"{where}: denied (HTTP 403{detail}): check that {who} may push to {repository} on {self.registry}"
            )
        if status == 404:
            return OciBuildError(
                f"{where}: not found (HTTP 404{detail}): check the registry address and the repository name"
            )
        return OciBuildError(f"{where} failed: HTTP {status}{detail}")

    # ---- blobs ----------------------------------------------------------------------------------

    def _blob_exists(self, repository: str, digest: str, scopes: Tuple[str, ...]) -> bool:
        what = f"HEAD blob {short_digest(digest)}"
        response = self._send(
            "HEAD",
            self._url(f"/v2/{repository}/blobs/{digest}"),
            repository=repository,
            scopes=scopes,
            what=what,
        )
        if response.status_code == 200:
            return True
        if response.status_code == 404:
            return False
        raise self._fail(response, repository, what)

    def blob_exists(self, repository: str, digest: str) -> bool:
        return self._blob_exists(repository, digest, (pull_scope(repository),))

    def get_blob(self, repository: str, digest: str) -> bytes:
        what = f"blob {short_digest(digest)}"
        response = self._send(
            "GET",
            self._url(f"/v2/{repository}/blobs/{digest}"),
            repository=repository,
            scopes=(pull_scope(repository),),
            what=what,
        )
        if response.status_code != 200:
            raise self._fail(response, repository, what)
        data = response.content
        if sha256_digest(data) != digest:
            raise OciBuildError(
                f"{self.registry}: blob {digest} in {repository} came back with digest {sha256_digest(data)}: "
                "the registry or a proxy altered it"
            )
        return data

    def upload_blob(
        self, repository: str, digest: str, size: int, source: Source, *, mount_from: Sequence[str] = ()
    ) -> str:
        """Make the blob present in `repository`: "skipped" (already there), "mounted" or "uploaded"."""
        scopes = (push_scope(repository),)
        label = f"{self.registry}/{repository}: blob {short_digest(digest)} ({size} bytes)"
        if self._blob_exists(repository, digest, scopes):
            self._log(f"{label} skipped: already there")
            return "skipped"
        location: Optional[str] = None
        for origin in dict.fromkeys(mount_from):
            if origin == repository:
                continue
            location = self._try_mount(repository, digest, origin)
            if location is None:
                self._log(f"{label} mounted from {origin}")
                return "mounted"
            break  # the registry opened an ordinary upload instead: use it
        failures = 0
        while True:
            try:
                if location is None:
                    location = self._start_upload(repository)
                if size > self.chunk_threshold:
                    self._upload_chunked(repository, location, digest, size, source, label)
                else:
                    self._upload_monolithic(repository, location, digest, size, source)
                break
            except (_Transient, _Restart) as e:
                failures += 1
                problem = e.problem if isinstance(e, _Transient) else str(e)
                if failures >= self.max_attempts:
                    raise OciBuildError(
                        f"{self.registry}: uploading blob {digest} to {repository} failed after {failures} attempts "
                        f"({problem}): check that the registry is up and has space"
                    ) from None
                self._pause(
                    failures,
                    e.delay if isinstance(e, _Transient) else None,
                    f"upload of {short_digest(digest)}: {problem}",
                )
                location = None  # a fresh session: the old one may hold part of the body
        self._log(f"{label} uploaded")
        return "uploaded"

    def _try_mount(self, repository: str, digest: str, origin: str) -> Optional[str]:
        """None when mounted; else the upload location the registry opened instead (202)."""
        what = f"mount of {short_digest(digest)} from {origin}"
        response = self._send(
            "POST",
            self._url(f"/v2/{repository}/blobs/uploads/"),
            repository=repository,
            scopes=(push_scope(repository), pull_scope(origin)),
            what=what,
            params={"mount": digest, "from": origin},
        )
        if response.status_code == 201:
            return None
        if response.status_code == 202:
            return self._location(response, repository, what)
        raise self._fail(response, repository, what)

    def _location(self, response: requests.Response, repository: str, what: str) -> str:
        location = response.headers.get("Location")
        if not location:
            raise OciBuildError(f"{self.registry}: {what} in {repository}: the registry sent no Location")
        url = urljoin(self.base_url + "/", location)
        if urlsplit(url).scheme != urlsplit(self.base_url).scheme:
            raise OciBuildError(
                f"{self.registry}: {what} in {repository}: the registry sent an upload Location with another "
                f"scheme ({urlsplit(url).scheme}): refusing to send the image there"
            )
        return url

    def _start_upload(self, repository: str) -> str:
        what = "upload start"
        response = self._send(
            "POST",
            self._url(f"/v2/{repository}/blobs/uploads/"),
            repository=repository,
            scopes=(push_scope(repository),),
            what=what,
        )
        if response.status_code != 202:
            raise self._fail(response, repository, what)
        return self._location(response, repository, what)

    def _finish(self, response: requests.Response, repository: str, digest: str, what: str) -> None:
        if response.status_code == 404 and self._blob_exists(repository, digest, (push_scope(repository),)):
            return  # an earlier attempt's PUT landed, only its answer was lost
        if response.status_code in (400, 404, 416):
            # Digest mismatch from a partial body, or the session is gone: a new session fixes both,
            # unless the local blob itself is wrong, which the attempt limit then reports.
            raise _Restart(f"HTTP {response.status_code}{_registry_error(response)}")
        if response.status_code != 201:
            raise self._fail(response, repository, what)
        theirs = response.headers.get("Docker-Content-Digest")
        if theirs and theirs != digest:
            raise OciBuildError(
                f"{self.registry}: blob {digest} in {repository} was stored as {theirs}: the registry or a proxy altered it"
            )

    def _upload_monolithic(
        self, repository: str, location: str, digest: str, size: int, source: Source
    ) -> None:
        what = f"upload of blob {short_digest(digest)}"

        def body() -> Union[bytes, IO[bytes]]:
            return source if isinstance(source, bytes) else open(source, "rb")

        response = self._send(
            "PUT",
            location,
            repository=repository,
            scopes=(push_scope(repository),),
            what=what,
            headers={"Content-Type": "application/octet-stream", "Content-Length": str(size)},
            body=body,
            params={"digest": digest},
            retry=False,
        )
        self._finish(response, repository, digest, what)

    def _upload_status(self, repository: str, location: str) -> Tuple[str, int]:
        """(location, next offset) of an upload session, from its `Range`."""
        what = "upload status"
        response = self._send(
            "GET", location, repository=repository, scopes=(push_scope(repository),), what=what
        )
        if response.status_code in (404, 400):
            raise _Restart(f"upload session gone (HTTP {response.status_code})")
        if response.status_code != 204:
            raise self._fail(response, repository, what)
        end = _range_end(response)
        # `0-0` means zero or one byte: resume from zero, a 416 would restart the session anyway.
        offset = end + 1 if end else 0
        return self._location(response, repository, what), offset

    def _upload_chunked(
        self, repository: str, location: str, digest: str, size: int, source: Source, label: str
    ) -> None:
        scopes = (push_scope(repository),)
        what = f"chunked upload of blob {short_digest(digest)}"
        offset = 0
        failures = 0
        while offset < size:
            end = min(offset + self.chunk_size, size)
            chunk = _read_range(source, offset, end)
            try:
                response = self._send(
                    "PATCH",
                    location,
                    repository=repository,
                    scopes=scopes,
                    what=what,
                    headers={
                        "Content-Type": "application/octet-stream",
                        "Content-Range": f"{offset}-{end - 1}",
                        "Content-Length": str(len(chunk)),
                    },
                    body=lambda: chunk,
                    retry=False,
                )
            except _Transient as e:
                failures += 1
                if failures >= self.max_attempts:
                    raise
                self._pause(failures, e.delay, f"{what} at byte {offset}: {e.problem}")
                location, offset = self._upload_status(repository, location)
                self._log(f"{label} resuming at byte {offset}")
                continue
            if response.status_code == 416:
                failures += 1
                if failures >= self.max_attempts:
                    raise _Restart("the registry keeps refusing the chunk's range (HTTP 416)")
                location, offset = self._upload_status(repository, location)
                continue
            if response.status_code != 202:
                if response.status_code in (400, 404):
                    raise _Restart(f"HTTP {response.status_code}{_registry_error(response)}")
                raise self._fail(response, repository, what)
            location = self._location(response, repository, what)
            held = _range_end(response)
            offset = held + 1 if held is not None else end
            self._log(f"{label} {offset}/{size} bytes sent")
        response = self._send(
            "PUT",
            location,
            repository=repository,
            scopes=scopes,
            what=what,
            headers={"Content-Length": "0"},
            params={"digest": digest},
        )
        self._finish(response, repository, digest, what)

    # ---- manifests ------------------------------------------------------------------------------

    def put_manifest(self, repository: str, reference: str, data: bytes, media_type: str) -> str:
        """PUT exactly `data` as `media_type` under `reference` (tag or digest); returns its digest."""
        digest = sha256_digest(data)
        what = f"manifest {reference if not reference.startswith('sha256:') else short_digest(reference)}"
        response = self._send(
            "PUT",
            self._url(f"/v2/{repository}/manifests/{reference}"),
            repository=repository,
            scopes=(push_scope(repository),),
            what=what,
            headers={"Content-Type": media_type},
            body=lambda: data,
        )
        if response.status_code != 201:
            raise self._fail(response, repository, what)
        theirs = response.headers.get("Docker-Content-Digest")
        if theirs and theirs != digest:
            raise OciBuildError(
                f"{self.registry}: manifest {reference} in {repository} was stored as {theirs}, not {digest}: "
                "the registry rewrote it"
            )
        return digest

    def _manifest_request(
        self, method: str, repository: str, reference: str, scope: str, accept: Sequence[str]
    ) -> Optional[requests.Response]:
        """HEAD or GET `reference`: the 200 response, None on 404, an OciBuildError otherwise."""
        what = f"{'HEAD ' if method == 'HEAD' else ''}manifest {reference}"
        response = self._send(
            method,
            self._url(f"/v2/{repository}/manifests/{reference}"),
            repository=repository,
            scopes=(scope,),
            what=what,
            headers={"Accept": ", ".join(accept)},
        )
        if response.status_code == 404:
            return None
        if response.status_code != 200:
            raise self._fail(response, repository, what)
        return response

    def manifest_digest(
        self, repository: str, reference: str, accept: Sequence[str] = ALL_MANIFEST_TYPES
    ) -> Optional[str]:
        """The digest `reference` resolves to (HEAD), or None if the registry has no such manifest."""
        # Push scope: push.py asks this right before pushing, so one token serves both.
        response = self._manifest_request("HEAD", repository, reference, push_scope(repository), accept)
        return response.headers.get("Docker-Content-Digest") if response is not None else None

    def get_manifest(
        self, repository: str, reference: str, accept: Sequence[str] = ALL_MANIFEST_TYPES
    ) -> Optional[Manifest]:
        response = self._manifest_request("GET", repository, reference, pull_scope(repository), accept)
        if response is None:
            return None
        data = response.content
        digest = sha256_digest(data)
        claimed = (
            reference if reference.startswith("sha256:") else response.headers.get("Docker-Content-Digest")
        )
        if claimed and claimed != digest:
            raise OciBuildError(
                f"{self.registry}: manifest {reference} in {repository} has digest {digest}, not {claimed}: "
                "the registry or a proxy altered it"
            )
        media_type = response.headers.get("Content-Type", "").split(";")[0].strip()
        if not media_type or media_type in ("application/json", "text/plain"):
            try:
                media_type = str(json.loads(data).get("mediaType") or media_type)
            except (ValueError, AttributeError):
                pass
        return Manifest(media_type, data, digest)

    def referrers(self, repository: str, digest: str) -> Optional[dict]:
        """The OCI 1.1 referrers index of `digest`; None when the registry has no referrers API."""
        what = f"referrers of {short_digest(digest)}"
        response = self._send(
            "GET",
            self._url(f"/v2/{repository}/referrers/{digest}"),
            repository=repository,
            scopes=(pull_scope(repository),),
            what=what,
            headers={"Accept": OCI_INDEX},
        )
        if response.status_code in (400, 404, 405):  # as go-containerregistry: no referrers API
            return None
        if response.status_code != 200:
            raise self._fail(response, repository, what)
        try:
            value = response.json()
        except ValueError:
            raise OciBuildError(f"{self.registry}: {what} in {repository} is not JSON") from None
        if not isinstance(value, dict):
            raise OciBuildError(f"{self.registry}: {what} in {repository} is not a JSON object")
        return value


def _origin(url: str) -> Tuple[str, str]:
    parts = urlsplit(url)
    return parts.scheme, parts.netloc.lower()


def _transport_problem(error: Exception) -> str:
    """A short, secret-free name for a transport failure (no URL, no headers)."""
    if isinstance(error, requests.Timeout):
        return "timed out"
    if isinstance(error, requests.ConnectionError):
        return (
            "connection failed"
            if "Connection refused" in str(error) or "NewConnection" in str(error)
            else "connection dropped"
        )
    return type(error).__name__
