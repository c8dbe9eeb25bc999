"""The plugin's rules with the Pants core rules they need outside a full Pants run (for RuleRunner)."""

from __future__ import annotations

from pants.backend.python.goals import lockfile as python_lockfile
from pants.core.goals import generate_lockfiles, package
from pants.core.util_rules import archive
from pants_oci import register


def plugin_rules() -> list:
    return [
        *register.rules(),
        *generate_lockfiles.rules(),
        *python_lockfile.rules(),
        *package.rules(),
        *archive.rules(),
    ]
