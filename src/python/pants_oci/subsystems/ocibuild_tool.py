"""`[ocibuild]`: the core library (`ocibuild`) and its requirements, run in cached Processes."""

from __future__ import annotations

from pants.backend.python.subsystems.python_tool_base import LockfileRules, PythonToolRequirementsBase
from pants.util.strutil import softwrap


class OciBuildTool(PythonToolRequirementsBase):
    options_scope = "ocibuild"
    help = softwrap(
        """
        The `ocibuild` core library that builds APK lockfiles, layers and OCI images inside
        hermetic Processes. Its requirements (`cryptography`, `deflate`, `pynacl`, `pyyaml`, `requests`, `zstandard`) come from
        the lockfile shipped with the plugin, or from the resolve named by
        `[ocibuild].install_from_resolve`.
        """
    )

    default_version = "cryptography>=41"
    default_extra_requirements = [
        "deflate==0.8.1",
        "pynacl>=1.5",
        "pyyaml>=6",
        "requests>=2.31",
        "zstandard==0.23.0",
    ]
    default_requirements = [
        "cryptography>=41",
        "deflate==0.8.1",
        "pynacl>=1.5",
        "pyyaml>=6",
        "requests>=2.31",
        "zstandard==0.23.0",
    ]
    register_interpreter_constraints = True
    default_interpreter_constraints = ["CPython==3.9.*"]
    # Used when `install_from_resolve` is unset; regenerate with
    # `pants --ocibuild-lockfile=src/python/pants_oci/subsystems/ocibuild.lock generate-lockfiles --resolve=ocibuild`.
    default_lockfile_resource = ("pants_oci.subsystems", "ocibuild.lock")
    lockfile_rules_type = LockfileRules.SIMPLE
