"""What the nightly pipeline reads from the repository's Pants configuration: the APK resolves and
mirrors, from pants.toml and then the files PANTS_CONFIG_FILES adds (CI's pants.ci.toml), as Pants
reads them. Other environment and command-line overrides are not seen."""

from __future__ import annotations

import ast
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional

from ocibuild.apk.mirrors import Mirrors
from ocibuild.errors import OciBuildError

__all__ = ["RepoSettings", "lockfile_for_spec", "read_settings"]

# As the plugin names it (pants_oci.subsystems.apk.lockfile_for_spec): the spec's stem + .lock.json.
_LOCKFILE_SUFFIX = ".lock.json"


def lockfile_for_spec(spec_path: str) -> str:
    return os.path.splitext(spec_path)[0] + _LOCKFILE_SUFFIX


@dataclass(frozen=True)
class RepoSettings:
    resolves: Dict[str, str]  # name -> spec path, relative to the repository
    mirrors: Dict[str, List[str]]  # URL prefix -> alternatives, %(buildroot)s expanded

    def lockfile(self, resolve: str) -> str:
        return lockfile_for_spec(self.resolves[resolve])

    def mirror_map(self) -> Mirrors:
        return Mirrors(self.mirrors)


def _load_toml(path: Path) -> Mapping[str, Any]:
    try:
        import tomllib as toml_reader  # type: ignore[import-not-found]
    except ImportError:
        try:
            import tomli as toml_reader  # type: ignore[no-redef]  # pants: no-infer-dep
        except ImportError:
            import toml  # type: ignore[import-untyped]  # pants: no-infer-dep (Pants' own dependency)

            return toml.loads(path.read_text())
    return toml_reader.loads(path.read_text())


def _config_files(repo: Path, environ: Mapping[str, str]) -> List[Path]:
    """pants.toml, then PANTS_CONFIG_FILES's (a path, or a Python list literal as Pants takes)."""
    text = environ.get("PANTS_CONFIG_FILES", "").strip().lstrip("+")
    extra = ast.literal_eval(text) if text.startswith("[") else ([text] if text else [])
    return [repo / "pants.toml", *(repo / str(name) for name in extra)]


def read_settings(repo: Path, environ: Optional[Mapping[str, str]] = None) -> RepoSettings:
    apk: Dict[str, Any] = {}
    for path in _config_files(repo, os.environ if environ is None else environ):
        try:
            config = _load_toml(path)
        except FileNotFoundError:
            raise OciBuildError(
                f"{path}: not found: run the nightly pipeline at the repository's root"
            ) from None
        except Exception as e:  # each TOML reader has its own error class
            raise OciBuildError(f"{path}: not valid TOML ({e})") from None
        apk.update(config.get("apk", {}))  # a later file's key replaces the earlier one's, as in Pants
    resolves = apk.get("resolves", {})
    if not isinstance(resolves, dict) or not resolves:
        raise OciBuildError(f"{repo / 'pants.toml'}: [apk].resolves names no resolve: nothing to refresh")
    root = str(repo)
    mirrors = {
        prefix.replace("%(buildroot)s", root): [m.replace("%(buildroot)s", root) for m in alternatives]
        for prefix, alternatives in apk.get("mirrors", {}).items()
    }
    return RepoSettings({str(k): str(v) for k, v in sorted(resolves.items())}, mirrors)
