"""The plugin's rules with the Pants core rules they need outside a full Pants run (for RuleRunner)."""

from __future__ import annotations

import os

import toml
from pants.backend.python.goals import lockfile as python_lockfile
from pants.core.goals import generate_lockfiles, package
from pants.core.util_rules import archive
from pants_oci import register
from testutil.paths import repo_root


def plugin_rules() -> list:
    return [
        *register.rules(),
        *generate_lockfiles.rules(),
        *python_lockfile.rules(),
        *package.rules(),
        *archive.rules(),
    ]


def bootstrap_options() -> list:
    """Options a RuleRunner needs to run the core's PEX Processes as this repository's `./pants` does:
    pants.toml's pex version and interpreter constraints (the shipped [ocibuild] lock is for 3.9), the
    pex tool `./pants` builds from PyPI (GitHub is unreachable) and the CA bundle for PyPI (both passed
    to tests by [test].extra_env_vars)."""
    config = toml.loads((repo_root() / "pants.toml").read_text())
    pex_cli, constraints = config["pex-cli"], config["python"]["interpreter_constraints"]
    options = [
        f"--pex-cli-version={pex_cli['version']}",
        f"--pex-cli-known-versions={pex_cli['known_versions']!r}",
        f"--python-interpreter-constraints={constraints!r}",
        f"--ocibuild-interpreter-constraints={constraints!r}",
    ]
    if os.environ.get("PANTS_PEX_CLI_URL_TEMPLATE"):
        options.append(f"--pex-cli-url-template={os.environ['PANTS_PEX_CLI_URL_TEMPLATE']}")
    if os.environ.get("PANTS_CA_CERTS_PATH"):
        options.append(f"--ca-certs-path={os.environ['PANTS_CA_CERTS_PATH']}")
    return options
