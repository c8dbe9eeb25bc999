"""Image references: `registry[:port]/repository[:tag][@sha256:...]`, parsed and formatted.

The grammar is distribution's (reference/regexp.go), restricted to what a push needs: the registry is
always explicit (a first component with a dot or a colon, or `localhost`), so a name never silently
goes to Docker Hub.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Optional, Tuple

from ocibuild.common.digests import is_sha256_digest
from ocibuild.errors import OciBuildError

_COMPONENT = r"[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*"
_REPOSITORY_RE = re.compile(rf"^{_COMPONENT}(?:/{_COMPONENT})*$")
_REGISTRY_RE = re.compile(
    r"^(?:[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9-]+)*|\[[0-9a-fA-F:]+\])(?::[0-9]+)?$"
)
_TAG_RE = re.compile(r"^[\w][\w.-]{0,127}$")


@dataclass(frozen=True)
class Reference:
    registry: str  # host[:port], as written
    repository: str
    tag: Optional[str] = None
    digest: Optional[str] = None

    @property
    def name(self) -> str:
        """`registry/repository`: what cosign's docker-reference and the user's pull name."""
        return f"{self.registry}/{self.repository}"

    def with_tag(self, tag: str) -> "Reference":
        return Reference(self.registry, self.repository, check_tag(tag), None)

    def with_digest(self, digest: str) -> "Reference":
        return Reference(self.registry, self.repository, None, check_digest(digest))

    def __str__(self) -> str:
        text = self.name
        if self.tag:
            text += f":{self.tag}"
        if self.digest:
            text += f"@{self.digest}"
        return text


def is_registry_component(component: str) -> bool:
    return ("." in component or ":" in component or component == "localhost") and bool(
        _REGISTRY_RE.match(component)
    )


def check_tag(tag: str) -> str:
    if not _TAG_RE.match(tag):
        raise OciBuildError(
            f"{tag!r} is not a valid tag: use up to 128 letters, digits, '_', '.' and '-', not starting with '.' or '-'"
        )
    return tag


def check_digest(digest: str) -> str:
    if not is_sha256_digest(digest):
        raise OciBuildError(f"{digest!r} is not a sha256 digest (`sha256:` + 64 lowercase hex digits)")
    return digest


def check_repository(repository: str, origin: str) -> str:
    if len(repository) > 255 or not _REPOSITORY_RE.match(repository):
        raise OciBuildError(
            f"{origin}: {repository!r} is not a valid repository name: use lowercase letters, digits and "
            "separators ('.', '_', '-') in '/'-separated components"
        )
    return repository


def split_repository(text: str) -> Tuple[str, str]:
    """`REGISTRY/REPO/NAME` -> (registry, repository); the registry must be named."""
    registry, sep, repository = text.partition("/")
    if not sep or not is_registry_component(registry):
        raise OciBuildError(
            f"{text!r} does not start with a registry: write HOST[:PORT]/REPOSITORY, e.g. localhost:5000/{text}"
        )
    return registry, check_repository(repository, text)


def parse_reference(text: str) -> Reference:
    """Parse `host:port/repo/name:tag@sha256:...` (tag and digest optional)."""
    rest, at, digest = text.partition("@")
    name, tag = rest, None
    last = rest.rsplit("/", 1)[-1]
    if ":" in last:  # a colon after the last slash is a tag (one before it is a port)
        name, tag = rest.rsplit(":", 1)
    registry, repository = split_repository(name)
    return Reference(
        registry,
        repository,
        check_tag(tag) if tag is not None else None,
        check_digest(digest) if at else None,
    )
