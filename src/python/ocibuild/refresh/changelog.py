"""The changelog between an old and a new APK lock of one resolve: packages added, removed,
upgraded, downgraded or rebuilt (apk's version order), and for the packages people ask about the
content: CA roots of `ca-certificates-bundle`, release and zones of `tzdata`. Rendered as text (the
log) and as Markdown (a pull-request body or release note)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Dict, List, Optional, Sequence, Tuple

from ocibuild.apk.lockfile import LockedPackage, Lockfile
from ocibuild.apk.version import compare_versions
from ocibuild.refresh.content import CaRoot, ca_roots, set_changes, tz_release, tz_zones

__all__ = [
    "CA_PACKAGE",
    "TZ_PACKAGE",
    "PackageChange",
    "CaChange",
    "TzChange",
    "Changelog",
    "PackageBytes",
    "compute_changelog",
    "render_text",
    "render_markdown",
]

CA_PACKAGE = "ca-certificates-bundle"
TZ_PACKAGE = "tzdata"

# The bytes of a locked package (the pipeline fetches them by the lock's URL, sha256 and size), or
# None when no mirror has them any more (an old build Alpine dropped): its contents are not compared.
PackageBytes = Callable[[LockedPackage], Optional[bytes]]


@dataclass(frozen=True)
class PackageChange:
    kind: str  # "added", "removed", "upgraded", "downgraded", "rebuilt" (same version, new bytes)
    name: str
    old: Optional[str]  # version
    new: Optional[str]
    architectures: Tuple[str, ...]  # where the change applies, sorted

    def describe(self, all_architectures: Sequence[str]) -> str:
        where = (
            ""
            if list(self.architectures) == sorted(all_architectures)
            else f" ({', '.join(self.architectures)})"
        )
        if self.kind == "added":
            return f"added {self.name} {self.new}{where}"
        if self.kind == "removed":
            return f"removed {self.name} {self.old}{where}"
        if self.kind == "rebuilt":
            return f"rebuilt {self.name} {self.new}{where}"
        return f"{self.kind} {self.name} {self.old} → {self.new}{where}"


@dataclass(frozen=True)
class CaChange:
    old_version: str
    new_version: str
    added: Tuple[CaRoot, ...]
    removed: Tuple[CaRoot, ...]
    compared: bool = True  # False: the old package is gone from every mirror


@dataclass(frozen=True)
class TzChange:
    old_release: str
    new_release: str
    added: Tuple[str, ...]
    removed: Tuple[str, ...]
    compared: bool = True  # False: the old package is gone from every mirror


@dataclass(frozen=True)
class Changelog:
    resolve: str
    architectures: Tuple[str, ...]
    packages: Tuple[PackageChange, ...]
    ca: Optional[CaChange] = None
    tz: Optional[TzChange] = None

    @property
    def changed(self) -> bool:
        return bool(self.packages)


def _classify(old: Optional[LockedPackage], new: Optional[LockedPackage]) -> Optional[str]:
    if old is None:
        return "added"
    if new is None:
        return "removed"
    if old.version != new.version:
        return "upgraded" if compare_versions(new.version, old.version) > 0 else "downgraded"
    if (old.sha256, old.checksum, old.data) != (new.sha256, new.checksum, new.data):
        return "rebuilt"
    return None


def _package_changes(old: Optional[Lockfile], new: Lockfile) -> Tuple[PackageChange, ...]:
    before = {(p.name, p.architecture): p for p in (old.packages if old else ())}
    after = {(p.name, p.architecture): p for p in new.packages}
    # One line per (name, change) whatever the number of architectures it happens in.
    grouped: Dict[Tuple[str, str, Optional[str], Optional[str]], List[str]] = {}
    for name, arch in sorted(set(before) | set(after)):
        a, b = before.get((name, arch)), after.get((name, arch))
        kind = _classify(a, b)
        if kind is not None:
            key = (name, kind, a.version if a else None, b.version if b else None)
            grouped.setdefault(key, []).append(arch)
    return tuple(
        PackageChange(kind, name, old_v, new_v, tuple(sorted(archs)))
        for (name, kind, old_v, new_v), archs in sorted(grouped.items(), key=lambda kv: kv[0][:2])
    )


def _pair(old: Optional[Lockfile], new: Lockfile, name: str) -> Optional[Tuple[LockedPackage, LockedPackage]]:
    """The old and new package `name` of the first architecture (sorted) where it changed."""
    if old is None:
        return None
    for arch in sorted(new.archs):
        a = next((p for p in old.packages_for(arch) if p.name == name), None)
        b = next((p for p in new.packages_for(arch) if p.name == name), None)
        if a is not None and b is not None and _classify(a, b) is not None:
            return a, b
    return None


def compute_changelog(
    resolve: str, old: Optional[Lockfile], new: Lockfile, package_bytes: PackageBytes
) -> Changelog:
    """`old` None: the resolve had no lock yet (everything is added). `package_bytes` is called only
    for the CA bundle and tzdata packages that changed."""
    ca = tz = None
    pair = _pair(old, new, CA_PACKAGE)
    if pair:
        a, b = pair
        before, after = package_bytes(a), package_bytes(b)
        if before is None or after is None:
            ca = CaChange(a.version, b.version, (), (), compared=False)
        else:
            added, removed = set_changes(ca_roots(before, a.url), ca_roots(after, b.url))
            ca = CaChange(a.version, b.version, added, removed)
    pair = _pair(old, new, TZ_PACKAGE)
    if pair:
        a, b = pair
        before, after = package_bytes(a), package_bytes(b)
        release = (tz_release(a.version), tz_release(b.version))
        if before is None or after is None:
            tz = TzChange(*release, (), (), compared=False)
        else:
            added, removed = set_changes(tz_zones(before, a.url), tz_zones(after, b.url))
            tz = TzChange(*release, added, removed)
    return Changelog(resolve, tuple(sorted(new.archs)), _package_changes(old, new), ca, tz)


_GONE = "the old package is on no configured mirror any more"


def _ca_lines(ca: CaChange) -> List[Tuple[str, str]]:
    return [("+", f"{root.subject} (SHA-256 {root.sha256})") for root in ca.added] + [
        ("-", f"{root.subject} (SHA-256 {root.sha256})") for root in ca.removed
    ]


def render_text(changelogs: Sequence[Changelog]) -> str:
    lines: List[str] = []
    for log in changelogs:
        if not log.changed:
            lines.append(f"resolve {log.resolve}: no package changed")
            continue
        lines.append(f"resolve {log.resolve}: {len(log.packages)} package change(s)")
        lines += [f"  {change.describe(log.architectures)}" for change in log.packages]
        if log.tz:
            lines.append(f"  tzdata release {log.tz.old_release} → {log.tz.new_release}")
            if not log.tz.compared:
                lines.append(f"    zones not compared: {_GONE}")
            lines += [f"    zone added: {zone}" for zone in log.tz.added]
            lines += [f"    zone removed: {zone}" for zone in log.tz.removed]
        if log.ca:
            lines.append(
                f"  CA roots ({CA_PACKAGE} {log.ca.old_version} → {log.ca.new_version}): "
                + (
                    f"not compared: {_GONE}"
                    if not log.ca.compared
                    else f"{len(log.ca.added)} added, {len(log.ca.removed)} removed"
                )
            )
            lines += [
                f"    {'added' if sign == '+' else 'removed'}: {text}" for sign, text in _ca_lines(log.ca)
            ]
    return "\n".join(lines) + "\n"


def _md_escape(text: str) -> str:
    return text.replace("|", "\\|").replace("*", "\\*").replace("_", "\\_")


def render_markdown(changelogs: Sequence[Changelog]) -> str:
    out: List[str] = ["# Nightly refresh: package changes", ""]
    for log in changelogs:
        out.append(f"## Resolve `{log.resolve}`")
        out.append("")
        if not log.changed:
            out += ["No package changed.", ""]
            continue
        out += ["| change | package | old | new | architectures |", "|---|---|---|---|---|"]
        for c in log.packages:
            out.append(
                f"| {c.kind} | `{c.name}` | {c.old or ''} | {c.new or ''} | {', '.join(c.architectures)} |"
            )
        out.append("")
        if log.tz:
            out.append(f"### tzdata: release {log.tz.old_release} → {log.tz.new_release}")
            out.append("")
            out += [f"- zone added: `{zone}`" for zone in log.tz.added]
            out += [f"- zone removed: `{zone}`" for zone in log.tz.removed]
            if not log.tz.compared:
                out.append(f"- zones not compared: {_GONE}")
            elif not (log.tz.added or log.tz.removed):
                out.append("- no zone added or removed")
            out.append("")
        if log.ca:
            out.append(f"### CA roots: {CA_PACKAGE} {log.ca.old_version} → {log.ca.new_version}")
            out.append("")
            out += [
                f"- {'added' if sign == '+' else 'removed'}: {_md_escape(text)}"
                for sign, text in _ca_lines(log.ca)
            ]
            if not log.ca.compared:
                out.append(f"- roots not compared: {_GONE}")
            elif not (log.ca.added or log.ca.removed):
                out.append("- no root added or removed")
            out.append("")
    return "\n".join(out).rstrip("\n") + "\n"
