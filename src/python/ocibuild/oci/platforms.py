"""OCI platforms (os/architecture/variant) and their Alpine architecture names."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Dict, Optional, Tuple

from ocibuild.common.architectures import OCI_PLATFORMS
from ocibuild.common.validate import decode
from ocibuild.errors import OciBuildError

__all__ = [
    "Platform",
    "PlatformJson",
    "ALPINE_PLATFORMS",
    "platform_for_alpine_arch",
    "alpine_arch_for_platform",
    "same_platform",
]


@dataclass(frozen=True, order=True)
class Platform:
    os: str
    architecture: str
    variant: str = ""  # "" when the architecture has none

    def __str__(self) -> str:
        return "/".join(p for p in (self.os, self.architecture, self.variant) if p)

    def to_json(self) -> Dict[str, str]:
        out = {"os": self.os, "architecture": self.architecture}
        if self.variant:
            out["variant"] = self.variant
        return out

    @classmethod
    def from_json(cls, value: Any, where: str) -> "Platform":
        return decode(PlatformJson, value, where).platform()


@dataclass(frozen=True)
class PlatformJson:
    """A platform as an index or config writes it, for the core's validator."""

    extra_keys_ignored = True  # os.version, os.features: not ours to judge
    os: str
    architecture: str
    variant: Optional[str] = None

    def platform(self) -> Platform:
        return Platform(self.os, self.architecture, self.variant or "")


# Alpine (apk) architecture name -> OCI platform, from the core's one architecture table.
ALPINE_PLATFORMS: Dict[str, Platform] = {arch: Platform(*p) for arch, p in OCI_PLATFORMS.items()}


def platform_for_alpine_arch(arch: str, where: str = "architecture") -> Platform:
    try:
        return ALPINE_PLATFORMS[arch]
    except KeyError:
        raise OciBuildError(
            f"{where}: unknown Alpine architecture {arch!r}; use one of {', '.join(sorted(ALPINE_PLATFORMS))}"
        ) from None


def alpine_arch_for_platform(platform: Platform) -> Optional[str]:
    """The Alpine name of a platform, or None for platforms Alpine does not build."""
    for arch, candidate in ALPINE_PLATFORMS.items():
        if same_platform(candidate, platform):
            return arch
    return None


def same_platform(a: Platform, b: Platform) -> bool:
    """Equal, treating arm64 with no variant as arm64/v8 (the only arm64 variant in use)."""
    return _normalized(a) == _normalized(b)


def _normalized(p: Platform) -> Tuple[str, str, str]:
    if p.architecture == "arm64" and not p.variant:
        return (p.os, p.architecture, "v8")
    return (p.os, p.architecture, p.variant)
