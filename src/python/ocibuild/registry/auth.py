"""Registry authorization: HTTP Basic, and Bearer tokens from a `WWW-Authenticate` challenge.

The first request goes out anonymously; a 401's challenge says which scheme the registry wants. Bearer
tokens come from the challenge's realm (Docker's token protocol, GET with `service` and `scope`, the
credentials as Basic auth when there are any) and are cached per scope set; a 401 on a cached token
drops it and fetches a fresh one once.
"""

from __future__ import annotations

import base64
import re
import time
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional, Tuple

import requests
from ocibuild.errors import OciBuildError
from ocibuild.registry.credentials import Credentials, CredentialSource

# key=value or key="quoted \" value" pairs of one challenge (RFC 7235 auth-param).
_PARAM_RE = re.compile(r'\s*([A-Za-z0-9_.-]+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s,"]*))\s*,?')
_SCHEME_RE = re.compile(r"\s*([A-Za-z][A-Za-z0-9_-]*)(?:\s+|$)")

# (url, params, credentials) -> the realm's response; the client's retrying transport.
TokenFetcher = Callable[[str, List[Tuple[str, str]], Optional[Credentials]], requests.Response]


@dataclass(frozen=True)
class Challenge:
    scheme: str  # lower-case: "basic" or "bearer"
    params: Tuple[Tuple[str, str], ...]

    def param(self, name: str) -> Optional[str]:
        return dict(self.params).get(name)


def parse_challenges(header: str) -> List[Challenge]:
    """Every challenge of a `WWW-Authenticate` value (`Bearer realm="...",service="..."`, `Basic realm=...`)."""
    challenges: List[Challenge] = []
    pos = 0
    while pos < len(header):
        scheme = _SCHEME_RE.match(header, pos)
        if not scheme:
            break
        pos = scheme.end()
        params: List[Tuple[str, str]] = []
        while pos < len(header):
            param = _PARAM_RE.match(header, pos)
            if not param:  # the next challenge's scheme (`Basic realm=...` is no key=value)
                break
            quoted, bare = param.group(2), param.group(3)
            value = re.sub(r"\\(.)", r"\1", quoted) if quoted is not None else (bare or "")
            params.append((param.group(1).lower(), value))
            pos = param.end()
        challenges.append(Challenge(scheme.group(1).lower(), tuple(params)))
    return challenges


def merge_scopes(scopes: List[str]) -> List[str]:
    """One scope per resource with the union of the actions: `repository:x:pull` + `repository:x:pull,push`."""
    actions: Dict[Tuple[str, str], List[str]] = {}
    for scope in scopes:
        kind, _, rest = scope.partition(":")
        name, _, wanted = rest.rpartition(":")
        merged = actions.setdefault((kind, name), [])
        merged.extend(a for a in wanted.split(",") if a and a not in merged)
    return [f"{kind}:{name}:{','.join(sorted(acts))}" for (kind, name), acts in sorted(actions.items())]


def basic_header(credentials: Credentials) -> str:
    raw = f"{credentials.username}:{credentials.password}".encode("utf-8")
    return "Basic " + base64.b64encode(raw).decode("ascii")


_TOKEN_CHARS = re.compile(r"[\x21-\x7e]+")


@dataclass
class _Token:
    value: str = field(repr=False)
    expires: float  # time.monotonic() after which it is refreshed before use


class Authorizer:
    """The Authorization header for each request to one registry, learnt from its challenges."""

    def __init__(self, registry: str, source: Optional[CredentialSource], fetch_token: TokenFetcher) -> None:
        self.registry = registry
        self._source = source
        self._fetch_token = fetch_token
        self._credentials_loaded = False
        self._credentials: Optional[Credentials] = None
        self._scheme: Optional[str] = None  # None until a challenge names one
        self._bearer: Optional[Challenge] = None
        self._tokens: Dict[Tuple[str, ...], _Token] = {}
        self.token_requests = 0

    @property
    def credentials(self) -> Optional[Credentials]:
        if not self._credentials_loaded:
            self._credentials = self._source.get(self.registry) if self._source is not None else None
            self._credentials_loaded = True
        return self._credentials

    @property
    def has_credentials(self) -> bool:
        return self.credentials is not None

    def header(self, scopes: Tuple[str, ...]) -> Optional[str]:
        """The header to send with a request needing `scopes`, if the registry asked for one."""
        if self._scheme == "basic" and self.credentials is not None:
            return basic_header(self.credentials)
        if self._scheme == "bearer":
            token = self._tokens.get(scopes)
            if token is None or time.monotonic() >= token.expires:
                token = self._new_token(scopes)
            return f"Bearer {token.value}"
        return None

    def answer(self, response: requests.Response, scopes: Tuple[str, ...], repository: str) -> bool:
        """After a 401: True when a retry may now succeed (a new scheme or a fresh token)."""
        challenges = parse_challenges(response.headers.get("WWW-Authenticate", ""))
        by_scheme = {c.scheme: c for c in challenges}
        if "bearer" in by_scheme:
            # A first challenge, or a cached token the registry no longer accepts: fetch a fresh one.
            self._bearer = by_scheme["bearer"]
            self._scheme = "bearer"
            self._tokens.pop(scopes, None)
            self._new_token(scopes)
            return True
        if "basic" in by_scheme:
            if self._scheme == "basic" or self.credentials is None:
                return False  # sent already, or nothing to send
            self._scheme = "basic"
            return True
        raise OciBuildError(
            f"{self.registry}: answered 401 for {repository} without a Basic or Bearer challenge; "
            "check that the address is a registry"
        )

    def _new_token(self, scopes: Tuple[str, ...]) -> _Token:
        assert self._bearer is not None
        realm = self._bearer.param("realm")
        if not realm or not realm.startswith(("https://", "http://")):
            raise OciBuildError(f"{self.registry}: its Bearer challenge names no http(s) token realm")
        params: List[Tuple[str, str]] = []
        service = self._bearer.param("service")
        if service:
            params.append(("service", service))
        challenge_scope = self._bearer.param("scope")
        wanted = merge_scopes([*scopes, *(challenge_scope.split(" ") if challenge_scope else [])])
        params.extend(("scope", s) for s in wanted)
        self.token_requests += 1
        response = self._fetch_token(realm, params, self.credentials)
        realm_host = realm.split("/", 3)[2]
        if response.status_code in (401, 403):
            who = "the credentials" if self.credentials is not None else "anonymous access"
            raise OciBuildError(
                f"{self.registry}: token service {realm_host} refused {who} (HTTP {response.status_code}) for "
                f"{' '.join(wanted)}: check the username and password "
                "(docker login, or OCI_REGISTRY_USERNAME/OCI_REGISTRY_PASSWORD)"
            )
        if response.status_code != 200:
            raise OciBuildError(
                f"{self.registry}: token service {realm_host} answered HTTP {response.status_code}; try again later"
            )
        try:
            answer = response.json()
            value = answer.get("token") or answer.get("access_token")
            lifetime = float(answer.get("expires_in") or 60)
        except (ValueError, AttributeError, TypeError):
            value = None
        if not isinstance(value, str) or not value:
            raise OciBuildError(f"{self.registry}: token service {realm_host} answered no token")
        if not _TOKEN_CHARS.fullmatch(value):
            # It goes into a header: a newline would make requests quote it in an exception.
            raise OciBuildError(f"{self.registry}: token service {realm_host} answered a malformed token")
        # Refresh a little early; a 401 refreshes anyway.
        token = _Token(value, time.monotonic() + max(lifetime - 10, lifetime / 2))
        self._tokens[scopes] = token
        return token
