"""The image contents spec: the apko-like YAML a user writes to say which packages go in an image.

    contents:
      repositories: [https://dl-cdn.alpinelinux.org/alpine/v3.19/main]
      keyring: [https://alpinelinux.org/keys/alpine-devel@lists.alpinelinux.org-6165ee59.rsa.pub]
      packages: [alpine-baselayout-data, ca-certificates-bundle, "tzdata>=2023c"]
    archs: [x86_64]

Only these keys are accepted: a typo must fail the lock, not silently drop a package.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import List, Tuple

from ocibuild.common.architectures import ALPINE_ARCHS, alpine_arch
from ocibuild.common.validate import decode
from ocibuild.errors import OciBuildError
from ocibuild.strictload import load_yaml

__all__ = ["ImageContentsSpec", "load_spec"]


@dataclass(frozen=True)
class ImageContentsSpec:
    repositories: Tuple[str, ...]  # repository base URLs; the index is <repo>/<arch>/APKINDEX.tar.gz
    keyring: Tuple[str, ...]  # key URLs, or paths relative to the spec file
    packages: Tuple[str, ...]  # apk dependency strings: "tzdata", "tzdata>=2023c", "!foo"
    archs: Tuple[str, ...]  # Alpine architecture names, e.g. "x86_64"


@dataclass(frozen=True)
class _Contents:
    repositories: Tuple[str, ...]
    keyring: Tuple[str, ...]
    packages: Tuple[str, ...]


@dataclass(frozen=True)
class _SpecFile:
    """The spec file as written (apko's keys; the ones we use), checked by the core's validator."""

    archs: Tuple[str, ...]
    contents: _Contents


def _listed_once(items: Tuple[str, ...], where: str, origin: str) -> Tuple[str, ...]:
    items = tuple(v.strip() for v in items)
    if not all(items):
        raise OciBuildError(f"{origin}: `{where}` must be a list of non-empty strings")
    duplicates = sorted({v for v in items if items.count(v) > 1})
    if duplicates:
        raise OciBuildError(f"{origin}: `{where}` lists {', '.join(duplicates)} more than once")
    return items


def _normalise_arch(arch: str, origin: str) -> str:
    # Docker/OCI names that users often write are accepted too (as apko does).
    name = alpine_arch(arch)
    if name is None:
        raise OciBuildError(
            f"{origin}: unknown architecture {arch!r} in archs; use one of {', '.join(ALPINE_ARCHS)}"
        )
    return name


def load_spec(text: str, origin: str) -> ImageContentsSpec:
    """Parse and validate a spec; `origin` (the file name) goes into every error message."""
    doc = load_yaml(text, origin)  # a duplicate key (`packages:` twice) is an error, not "the last wins"
    spec = decode(_SpecFile, doc, origin)
    repositories = _listed_once(spec.contents.repositories, "contents.repositories", origin)
    for repo in repositories:
        if repo.startswith("@") or "://" not in repo:
            raise OciBuildError(
                f"{origin}: repository {repo!r} must be a URL such as https://dl-cdn.alpinelinux.org/alpine/v3.19/main"
            )
    keyring = _listed_once(spec.contents.keyring, "contents.keyring", origin)
    packages = _listed_once(spec.contents.packages, "contents.packages", origin)
    archs: List[str] = []
    for arch in _listed_once(spec.archs, "archs", origin):
        name = _normalise_arch(arch, origin)
        if name in archs:
            raise OciBuildError(f"{origin}: `archs` lists {name} more than once")
        archs.append(name)
    if not repositories or not keyring or not packages or not archs:
        raise OciBuildError(
            f"{origin}: contents.repositories, contents.keyring, contents.packages and archs must not be empty"
        )
    return ImageContentsSpec(
        repositories=tuple(r.rstrip("/") for r in repositories),
        keyring=keyring,
        packages=packages,
        archs=tuple(archs),
    )
