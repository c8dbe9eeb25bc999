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
from typing import Any, Dict, List, Tuple

from ocibuild.common.architectures import ALPINE_ARCHS, alpine_arch
from ocibuild.errors import OciBuildError
from ocibuild.strictload import load_yaml

__all__ = ["ImageContentsSpec", "load_spec"]

_TOP_KEYS = ("archs", "contents")
_CONTENTS_KEYS = ("keyring", "packages", "repositories")


@dataclass(frozen=True)
class ImageContentsSpec:
    repositories: Tuple[str, ...]  # repository base URLs; the index is <repo>/<arch>/APKINDEX.tar.gz
    keyring: Tuple[str, ...]  # key URLs, or paths relative to the spec file
    packages: Tuple[str, ...]  # apk dependency strings: "tzdata", "tzdata>=2023c", "!foo"
    archs: Tuple[str, ...]  # Alpine architecture names, e.g. "x86_64"


def _check_keys(mapping: Dict[Any, Any], allowed: Tuple[str, ...], where: str, origin: str) -> None:
    for key in mapping:
        if key not in allowed:
            raise OciBuildError(f"{origin}: unknown key {where}{key!r}; allowed here: {', '.join(allowed)}")


def _string_list(value: Any, where: str, origin: str, required: bool) -> Tuple[str, ...]:
    if value is None:
        if required:
            raise OciBuildError(f"{origin}: {where} is required and must be a list of strings")
        return ()
    if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
        raise OciBuildError(f"{origin}: {where} must be a list of non-empty strings, got {value!r}")
    items = tuple(v.strip() for v in value)
    duplicates = sorted({v for v in items if items.count(v) > 1})
    if duplicates:
        raise OciBuildError(f"{origin}: {where} lists {', '.join(duplicates)} more than once")
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
    if not isinstance(doc, dict):
        raise OciBuildError(f"{origin}: expected a mapping with keys {', '.join(_TOP_KEYS)} at the top level")
    _check_keys(doc, _TOP_KEYS, "", origin)
    contents = doc.get("contents")
    if not isinstance(contents, dict):
        raise OciBuildError(
            f"{origin}: 'contents' is required and must be a mapping with {', '.join(_CONTENTS_KEYS)}"
        )
    _check_keys(contents, _CONTENTS_KEYS, "contents.", origin)

    repositories = _string_list(contents.get("repositories"), "contents.repositories", origin, required=True)
    for repo in repositories:
        if repo.startswith("@") or "://" not in repo:
            raise OciBuildError(
                f"{origin}: repository {repo!r} must be a URL such as https://dl-cdn.alpinelinux.org/alpine/v3.19/main"
            )
    keyring = _string_list(contents.get("keyring"), "contents.keyring", origin, required=True)
    packages = _string_list(contents.get("packages"), "contents.packages", origin, required=True)
    archs: List[str] = []
    for arch in _string_list(doc.get("archs"), "archs", origin, required=True):
        name = _normalise_arch(arch, origin)
        if name in archs:
            raise OciBuildError(f"{origin}: archs lists {name} more than once")
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
