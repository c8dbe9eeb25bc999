"""URL prefix -> ordered alternatives (like Bazel's downloader config). Standard library only:
the Pants plugin maps download URLs with it in Pants' own process."""

from __future__ import annotations

from typing import Dict, List, Mapping, Optional, Sequence, Tuple

from ocibuild.errors import OciBuildError

__all__ = ["Mirrors"]


class Mirrors:
    """Maps URL prefixes to ordered alternatives; the longest matching prefix wins.

    Mirrors({"https://dl-cdn.alpinelinux.org/alpine/": ["file:///srv/apk-mirror/alpine/",
                                                        "https://dl-cdn.alpinelinux.org/alpine/"]})
    Upstream is tried only if listed: leaving it out keeps a build off the network.
    """

    def __init__(self, mapping: Optional[Mapping[str, Sequence[str]]] = None) -> None:
        self._mapping: Dict[str, Tuple[str, ...]] = {}
        for prefix, alternatives in (mapping or {}).items():
            if not prefix or not alternatives:
                raise OciBuildError(f"mirror {prefix!r}: needs a URL prefix and at least one alternative")
            self._mapping[prefix] = tuple(alternatives)

    @classmethod
    def parse(cls, specs: Sequence[str]) -> "Mirrors":
        """From command-line strings `PREFIX=MIRROR1,MIRROR2`."""
        mapping: Dict[str, List[str]] = {}
        for spec in specs:
            prefix, sep, alternatives = spec.partition("=")
            mirrors = [m for m in alternatives.split(",") if m]
            if not sep or not prefix or not mirrors:
                raise OciBuildError(f"--mirror {spec!r}: expected PREFIX=MIRROR1[,MIRROR2...]")
            if prefix in mapping:
                raise OciBuildError(f"--mirror {spec!r}: prefix {prefix} given twice")
            mapping[prefix] = mirrors
        return cls(mapping)

    def candidates(self, url: str) -> List[str]:
        matches = [p for p in self._mapping if url.startswith(p)]
        if not matches:
            return [url]
        prefix = max(matches, key=len)
        return [alternative + url[len(prefix) :] for alternative in self._mapping[prefix]]
