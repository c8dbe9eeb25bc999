"""The one architecture table: Alpine (apk) names, their OCI os/architecture/variant, and the names
users and hosts spell them with (`amd64`, `arm/v7`, `uname -m`'s `armv7l`, ...)."""

from __future__ import annotations

from typing import Dict, Optional, Tuple

__all__ = [
    "ALPINE_ARCHS",
    "OCI_PLATFORMS",
    "OCI_ARCH_NAMES",
    "alpine_arch",
    "host_alpine_arch",
]

# Alpine architecture -> OCI (os, architecture, variant); variant "" when there is none.
OCI_PLATFORMS: Dict[str, Tuple[str, str, str]] = {
    "x86_64": ("linux", "amd64", ""),
    "aarch64": ("linux", "arm64", "v8"),
    "armv7": ("linux", "arm", "v7"),
    "armhf": ("linux", "arm", "v6"),
    "x86": ("linux", "386", ""),
    "ppc64le": ("linux", "ppc64le", ""),
    "s390x": ("linux", "s390x", ""),
    "riscv64": ("linux", "riscv64", ""),
    "loongarch64": ("linux", "loong64", ""),
}

ALPINE_ARCHS: Tuple[str, ...] = tuple(sorted(OCI_PLATFORMS))

# `uname -m` / platform.machine() spellings that differ from Alpine's.
_MACHINE_NAMES = {
    "amd64": "x86_64",
    "arm64": "aarch64",
    "armv7l": "armv7",
    "armv6l": "armhf",
    "i386": "x86",
    "i686": "x86",
}


def _oci_arch_names() -> Dict[str, str]:
    """OCI `architecture[/variant]` -> Alpine name; a bare architecture only where it is unambiguous
    (`arm64` yes, `arm` no: v6 or v7)."""
    names: Dict[str, str] = {}
    by_arch: Dict[str, list] = {}
    for alpine, (_, arch, variant) in OCI_PLATFORMS.items():
        names[arch + (f"/{variant}" if variant else "")] = alpine
        by_arch.setdefault(arch, []).append(alpine)
    names.update({arch: alpines[0] for arch, alpines in by_arch.items() if len(alpines) == 1})
    return names


OCI_ARCH_NAMES: Dict[str, str] = _oci_arch_names()


def alpine_arch(name: str) -> Optional[str]:
    """The Alpine name for an Alpine or OCI architecture name, or None when it is neither."""
    if name in OCI_PLATFORMS:
        return name
    return OCI_ARCH_NAMES.get(name)


def host_alpine_arch(machine: str) -> str:
    """The Alpine name of a host's machine type (`platform.machine()`); unknown names pass through."""
    machine = machine.lower()
    return _MACHINE_NAMES.get(machine, machine)
