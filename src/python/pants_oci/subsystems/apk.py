"""`[apk]`: APK resolves (spec file -> lockfile) and download mirrors."""

from __future__ import annotations

import os
from typing import Dict, List

from ocibuild.apk.mirrors import Mirrors
from pants.option.option_types import DictOption
from pants.option.subsystem import Subsystem
from pants.util.memo import memoized_property
from pants.util.strutil import softwrap

LOCKFILE_SUFFIX = ".lock.json"


class ApkSubsystem(Subsystem):
    options_scope = "apk"
    help = "APK package resolution: which specs to lock and where to download packages from."

    resolves = DictOption[str](
        help=softwrap(
            """
            Resolve name -> path of an apko-style YAML spec (`contents:` repositories, keyring,
            packages; `archs:`). `pants generate-lockfiles` writes each resolve's lockfile next
            to its spec: `apko.yaml` -> `apko.lock.json`.
            """
        ),
    )
    mirrors = DictOption[List[str]](
        help=softwrap(
            """
            URL prefix -> ordered list of prefixes to try instead, like Bazel's downloader
            config. E.g. `{"https://dl-cdn.alpinelinux.org/alpine/":
            ["file:///srv/mirror/alpine/", "https://dl-cdn.alpinelinux.org/alpine/"]}`. Lockfiles
            always record the upstream URL; downloads are verified by sha256 and size whichever
            mirror serves them.
            """
        ),
    )

    @property
    def lockfiles(self) -> Dict[str, str]:
        return {name: lockfile_for_spec(spec) for name, spec in self.resolves.items()}

    @memoized_property
    def mirror_map(self) -> Mirrors:
        return Mirrors(self.mirrors)


def lockfile_for_spec(spec_path: str) -> str:
    stem, _ = os.path.splitext(spec_path)
    return stem + LOCKFILE_SUFFIX
