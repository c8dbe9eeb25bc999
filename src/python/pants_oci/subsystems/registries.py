"""`[oci.registries.<alias>]`: the registries `pants publish` pushes `oci_image`s to.

Modelled on Pants' docker backend (`pants.backend.docker.registries`): each alias has an
`address`, may be a `default` registry (pushed to when a target names none), may add
`extra_image_tags`, override the `repository`, be `insecure` (plain http, for loopback registries)
or `skip_push`. A target's `registries` names them as `@alias` or by address.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Dict, Iterator, Mapping, Optional, Tuple

from pants.option.parser import Parser
from pants.util.frozendict import FrozenDict

ALL_DEFAULT_REGISTRIES = "<all default registries>"

_KNOWN_KEYS = frozenset({"address", "default", "extra_image_tags", "insecure", "repository", "skip_push"})
# host[:port] with an optional path prefix (e.g. `ghcr.io/acme`), as image references spell it.
_ADDRESS = re.compile(r"[A-Za-z0-9.-]+(:[0-9]{1,5})?(/[a-z0-9]+([._/-][a-z0-9]+)*)?")


class OciRegistryError(ValueError):
    """A registry named by a target or `[oci].registries` that cannot be used as written."""


@dataclass(frozen=True)
class OciRegistry:
    alias: str
    address: str
    default: bool = False
    extra_image_tags: Tuple[str, ...] = ()
    insecure: bool = False
    repository: Optional[str] = None
    skip_push: bool = False

    @property
    def host(self) -> str:
        """`host[:port]` only: what `--insecure-registry` and credentials are keyed by."""
        return self.address.split("/", 1)[0]

    def repository_for(self, repository: str) -> str:
        """`address/repository`, the repository part overridden by the registry's `repository`."""
        return f"{self.address}/{self.repository or repository}"

    @classmethod
    def from_dict(cls, alias: str, options: Mapping[str, Any], where: str = "") -> "OciRegistry":
        where = where or f"[oci.registries.{alias}]"
        if not isinstance(options, Mapping):
            raise OciRegistryError(f"{where} must be a table with at least `address`, not {options!r}.")
        unknown = sorted(set(options) - _KNOWN_KEYS)
        if unknown:
            raise OciRegistryError(
                f"{where} has unknown key(s) {', '.join(unknown)}: use {', '.join(sorted(_KNOWN_KEYS))}."
            )
        address = options.get("address")
        if not isinstance(address, str) or not _ADDRESS.fullmatch(address):
            raise OciRegistryError(
                f"{where}: `address` must be a registry host[:port][/path], e.g. `ghcr.io/acme` or "
                f"`127.0.0.1:5000`, not {address!r}."
            )
        tags = options.get("extra_image_tags", ())
        if isinstance(tags, str) or not all(isinstance(t, str) for t in tags):
            raise OciRegistryError(f"{where}: `extra_image_tags` must be a list of tags, not {tags!r}.")
        repository = options.get("repository")
        if repository is not None and not isinstance(repository, str):
            raise OciRegistryError(f"{where}: `repository` must be a string, not {repository!r}.")
        return cls(
            alias=alias,
            address=address,
            default=Parser.ensure_bool(options.get("default", alias == "default")),
            extra_image_tags=tuple(tags),
            insecure=Parser.ensure_bool(options.get("insecure", False)),
            repository=repository,
            skip_push=Parser.ensure_bool(options.get("skip_push", False)),
        )


@dataclass(frozen=True)
class OciRegistries:
    by_name: FrozenDict[str, OciRegistry]  # "@alias" and "address" -> registry
    defaults: Tuple[OciRegistry, ...]

    @classmethod
    def from_dict(cls, options: Mapping[str, Any]) -> "OciRegistries":
        by_name: Dict[str, OciRegistry] = {}
        for alias in sorted(options):
            registry = OciRegistry.from_dict(alias, options[alias])
            by_name[f"@{alias}"] = registry
            by_name.setdefault(registry.address, registry)
        defaults = tuple(r for alias, r in sorted(by_name.items()) if alias.startswith("@") and r.default)
        return cls(FrozenDict(by_name), defaults)

    def get(self, *names: str, owner: str) -> Iterator[OciRegistry]:
        """The registries a target's `registries` field names, in its order, each once."""
        seen = set()
        for name in names:
            if name == ALL_DEFAULT_REGISTRIES:
                found: Tuple[OciRegistry, ...] = self.defaults
            elif name in self.by_name:
                found = (self.by_name[name],)
            elif name.startswith("@"):
                known = ", ".join(n for n in sorted(self.by_name) if n.startswith("@")) or "none"
                raise OciRegistryError(
                    f"{owner}: no registry with alias {name[1:]!r} in [oci.registries] (configured: "
                    f"{known}); add `[oci.registries.{name[1:]}]` with an `address` to pants.toml."
                )
            else:
                found = (OciRegistry.from_dict(name, {"address": name}, where=f"{owner}: registry {name!r}"),)
            for registry in found:
                if registry.address not in seen:
                    seen.add(registry.address)
                    yield registry
