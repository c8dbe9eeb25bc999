"""Pick the packages of one architecture that satisfy the requested names, as `apk add` would.

A small, deterministic solver for the apk-tools dependency model:
- a dependency names a package or anything a package provides (`p:` so:/cmd:/pc:/path names);
  versioned constraints (`tzdata>=2023c`, `foo~1.2`) match the real version or a versioned provide;
- `!name` is a conflict: nothing selected may be or provide `name`;
- `i:` install_if: a package joins when everything in its install_if list is installed;
- among candidates: one already selected, else the package of that very name, else the provider
  with the highest `k:` priority, then the highest version, then the first name.
Greedy selection can pick a version that a later dependency rules out; the solver then restarts with
that constraint known up front, until the choice is stable or no candidate is left (a clear error).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, List, NamedTuple, Optional, Sequence, Set, Tuple

from ocibuild.apk.index import ApkIndex, IndexEntry, gc_paused
from ocibuild.apk.version import Dependency, compare_versions, parse_dependency
from ocibuild.errors import OciBuildError

__all__ = ["resolve"]

_WORLD = "the spec"  # who requested the top-level names, in messages

_MAX_RESTARTS = 100


class _Provider(NamedTuple):  # a tuple: the universe makes one per name and provide of every entry
    entry: IndexEntry
    version: Optional[str]  # version the name is provided at; None for an unversioned provide
    is_real: bool  # the entry's own name


@dataclass(frozen=True)
class _Constraint:
    dep: Dependency
    source: str  # "the spec" or "name-version"


def _label(entry: IndexEntry) -> str:
    return f"{entry.name}-{entry.version}"


def _dep_text(dep: Dependency) -> str:
    text = ("!" if dep.conflict else "") + dep.name
    return text + (f"{dep.op}{dep.version}" if dep.op and dep.version is not None else "")


def _satisfies(dep: Dependency, provider: _Provider) -> bool:
    if dep.op is None or dep.version is None:
        return True
    if provider.version is None:
        return False  # an unversioned provide cannot meet a version constraint
    return dep.matches_version(provider.version)


def _parse(text: str, source: str, arch: str) -> Dependency:
    dep = parse_dependency(text, f"{source} ({arch})")
    if dep.tag:
        raise OciBuildError(
            f"{source} ({arch}): {text!r}: repository tags (name@tag) are not supported; drop the tag"
        )
    return dep


class _Universe:
    """Every candidate of one architecture, by the names it answers to."""

    def __init__(self, indexes: Sequence[ApkIndex], arch: str) -> None:
        self.arch = arch
        self.providers: Dict[str, List[_Provider]] = {}
        self.by_name: Dict[str, List[IndexEntry]] = {}
        self.with_install_if: List[str] = []  # names with an install_if entry, sorted
        seen: Set[Tuple[str, str]] = set()
        providers, by_name = self.providers, self.by_name  # the hot loop: one pass over every entry
        for index in indexes:
            for entry in index.entries:
                name, version, entry_arch = entry.name, entry.version, entry.architecture
                if entry_arch != arch and entry_arch != "noarch":
                    continue
                key = (name, version)
                if key in seen:
                    continue  # the first repository listing a build wins, as in apk-tools
                seen.add(key)
                by_name.setdefault(name, []).append(entry)
                if entry.install_if:
                    self.with_install_if.append(name)
                providers.setdefault(name, []).append(_Provider(entry, version, True))
                for text in entry.provides:
                    provided, sep, provided_version = text.partition("=")
                    if provided != name:
                        providers.setdefault(provided, []).append(
                            _Provider(entry, provided_version if sep and provided_version else None, False)
                        )
        self.with_install_if = sorted(set(self.with_install_if))

    def provides(self, entry: IndexEntry, name: str) -> List[_Provider]:
        return [p for p in self.providers.get(name, ()) if p.entry is entry]


class _Restart(Exception):
    def __init__(self, constraint: _Constraint) -> None:
        self.constraint = constraint


def _rank(provider: _Provider) -> Tuple:
    """Sort key for candidates (smallest first); versions sort by apk order via a wrapper."""
    return (
        0 if provider.is_real else 1,
        -(provider.entry.provider_priority or 0),
        _Descending(provider.version or ""),
        provider.entry.name,
        _Descending(provider.entry.version),
    )


class _Descending:
    """Orders apk versions newest first."""

    __slots__ = ("v",)

    def __init__(self, v: str) -> None:
        self.v = v

    def __lt__(self, other: "_Descending") -> bool:
        return compare_versions(self.v, other.v) > 0 if self.v and other.v else bool(self.v and not other.v)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Descending) and (
            self.v == other.v or (bool(self.v) and bool(other.v) and compare_versions(self.v, other.v) == 0)
        )


class _Solver:
    def __init__(self, universe: _Universe, known: List[_Constraint]) -> None:
        self.u = universe
        self.known = known  # constraints learnt in earlier rounds, applied when choosing
        self.selected: Dict[str, IndexEntry] = {}  # by real name
        self.reason: Dict[str, str] = {}  # real name -> who pulled it in
        self.conflicts: List[Tuple[_Constraint, Optional[IndexEntry]]] = []  # with the package declaring it

    def _selected_providers(self, name: str) -> List[_Provider]:
        return [p for p in self.u.providers.get(name, ()) if self.selected.get(p.entry.name) is p.entry]

    def _blocker(self, provider: _Provider) -> Optional[Tuple[_Constraint, Optional[IndexEntry]]]:
        """The constraint that rules `provider` out, if any, and the chosen package it clashes with."""
        entry = provider.entry
        label = _label(entry)
        for c in self.known:
            if c.dep.conflict:
                if self.u.provides(entry, c.dep.name) and c.source != label:
                    return c, None
            elif c.dep.name == entry.name and not _satisfies(c.dep, _Provider(entry, entry.version, True)):
                return c, None
        for c, declared_by in self.conflicts:  # conflicts declared by packages already chosen (or the spec)
            if self.u.provides(entry, c.dep.name) and c.source != label:
                return c, declared_by
        for text in entry.depends:  # the package's own conflicts against what is already chosen
            dep = _parse(text, label, self.u.arch)
            if dep.conflict:
                for p in self._selected_providers(dep.name):
                    if p.entry is not entry:
                        return _Constraint(dep, label), p.entry
        return None

    def require(self, c: _Constraint, by: Optional[IndexEntry] = None) -> None:
        dep = c.dep
        if dep.conflict:
            self.conflicts.append((c, by))
            for p in self._selected_providers(dep.name):
                if _label(p.entry) != c.source:
                    self._conflict(c, p.entry)
            return
        present = self._selected_providers(dep.name)
        if any(_satisfies(dep, p) for p in present):
            return
        if any(p.is_real for p in present):
            raise _Restart(c)  # the package of that name is in, at a version this constraint rules out
        candidates = [p for p in self.u.providers.get(dep.name, ()) if _satisfies(dep, p)]
        candidates = [p for p in candidates if p.entry.name not in self.selected]
        if not candidates:
            self._missing(c)
        allowed = [p for p in candidates if self._blocker(p) is None]
        if not allowed:
            best = min(candidates, key=_rank)
            blocker = self._blocker(best)
            assert blocker is not None
            constraint, clashing = blocker
            if constraint.dep.conflict:
                if clashing is not None and constraint.source == _label(best.entry):
                    # the candidate itself conflicts with something already chosen
                    self._conflict(constraint, clashing)
                self._conflict(constraint, best.entry, wanted_by=c.source)
            self._missing(c)
        self.select(min(allowed, key=_rank).entry, c.source)

    def select(self, entry: IndexEntry, source: str) -> None:
        self.selected[entry.name] = entry
        self.reason[entry.name] = source
        for c, _ in self.conflicts:
            if self.u.provides(entry, c.dep.name) and c.source != _label(entry):
                self._conflict(c, entry)
        for text in entry.depends:
            self.require(_Constraint(_parse(text, _label(entry), self.u.arch), _label(entry)), by=entry)

    def _conflict(self, c: _Constraint, entry: IndexEntry, wanted_by: Optional[str] = None) -> None:
        wanted_by = wanted_by or self.reason.get(entry.name, _WORLD)
        raise OciBuildError(
            f"{c.source} conflicts with {_label(entry)} (required by {wanted_by}) "
            f"for {self.u.arch}: {_dep_text(c.dep)}; drop one of them from the spec"
        )

    def _missing(self, c: _Constraint) -> None:
        dep, arch = c.dep, self.u.arch
        all_providers = self.u.providers.get(dep.name, ())
        if not all_providers:
            raise OciBuildError(
                f"no package named or providing {dep.name!r} for {arch} (required by {c.source}); "
                f"check the name and the spec's repositories"
            )
        available = ", ".join(sorted({_label(p.entry) for p in all_providers}))
        learnt = [k for k in self.known if not k.dep.conflict and k.dep.name == dep.name and k != c]
        also = "".join(f" and {_dep_text(k.dep)} (required by {k.source})" for k in learnt)
        raise OciBuildError(
            f"no package for {arch} satisfies {_dep_text(dep)} (required by {c.source}){also}; "
            f"available: {available}"
        )

    def add_install_if(self) -> bool:
        """Select every package whose install_if is met; True if anything was added."""
        for name in self.u.with_install_if:
            if name in self.selected:
                continue
            for entry in sorted(self.u.by_name[name], key=lambda e: _Descending(e.version)):
                if not entry.install_if or self._blocker(_Provider(entry, entry.version, True)) is not None:
                    continue
                triggers = [_parse(t, _label(entry), self.u.arch) for t in entry.install_if]
                if all(self._met(t) for t in triggers):
                    self.select(entry, f"install_if {' '.join(entry.install_if)}")
                    return True
                break  # only the best version of a name is considered, as apk-tools does
        return False

    def _met(self, dep: Dependency) -> bool:
        present = self._selected_providers(dep.name)
        if dep.conflict:
            return not present
        return any(_satisfies(dep, p) for p in present)


def resolve(indexes: Sequence[ApkIndex], requests: Sequence[str], arch: str) -> List[IndexEntry]:
    """The packages to install for `requests` on `arch`, dependencies before dependents."""
    with gc_paused():
        return _resolve(indexes, requests, arch)


def _resolve(indexes: Sequence[ApkIndex], requests: Sequence[str], arch: str) -> List[IndexEntry]:
    universe = _Universe(indexes, arch)
    world = [_Constraint(_parse(r, _WORLD, arch), _WORLD) for r in requests]
    known: List[_Constraint] = list(world)
    for _ in range(_MAX_RESTARTS):
        solver = _Solver(universe, known)
        try:
            for c in world:
                solver.require(c)
            while solver.add_install_if():
                pass
        except _Restart as r:
            if r.constraint in known:
                solver._missing(r.constraint)
            known.append(r.constraint)
            continue
        return _install_order(universe, solver.selected)
    raise OciBuildError(
        f"cannot settle the dependencies of {', '.join(requests)} for {arch}; simplify the spec"
    )


def _install_order(universe: _Universe, selected: Dict[str, IndexEntry]) -> List[IndexEntry]:
    """Dependencies first; among packages ready at the same time, by name; cycles broken by name."""
    after: Dict[str, Set[str]] = {name: set() for name in selected}  # name -> names it must follow
    for name, entry in selected.items():
        needs = [_parse(t, _label(entry), universe.arch) for t in entry.depends + entry.install_if]
        for dep in needs:
            if dep.conflict:
                continue
            for p in universe.providers.get(dep.name, ()):
                if selected.get(p.entry.name) is p.entry and p.entry.name != name and _satisfies(dep, p):
                    after[name].add(p.entry.name)
    order: List[IndexEntry] = []
    done: Set[str] = set()
    remaining = set(selected)
    while remaining:
        ready = [n for n in remaining if after[n] <= done]
        name = min(ready) if ready else min(remaining)  # no ready name: a dependency cycle, broken by name
        order.append(selected[name])
        done.add(name)
        remaining.discard(name)
    return order
