"""`[oci]`: the local container runtime that `pants run` loads and runs `oci_image`s with."""

from __future__ import annotations

from pants.core.util_rules.search_paths import ExecutableSearchPathsOptionMixin
from pants.option.option_types import ShellStrListOption, StrListOption, StrOption
from pants.option.subsystem import Subsystem
from pants.util.strutil import softwrap

# The runtimes `pants run` knows, in the order tried when `[oci].runtime` is unset.
RUNTIMES = ("podman", "docker")

# What the runtime's `load` sees of Pants' environment by default: where its daemon or storage is
# (docker's and podman's own variables), and what a rootless podman needs (HOME, XDG dirs, PATH
# for newuidmap and the OCI runtime). The `run` itself sees Pants' whole environment.
DEFAULT_ENV_VARS = (
    "PATH",
    "HOME",
    "USER",
    "XDG_RUNTIME_DIR",
    "XDG_CONFIG_HOME",
    "XDG_DATA_HOME",
    "DOCKER_HOST",
    "DOCKER_CONTEXT",
    "DOCKER_CONFIG",
    "DOCKER_CERT_PATH",
    "DOCKER_TLS_VERIFY",
    "DOCKER_API_VERSION",
    "CONTAINER_HOST",
    "CONTAINER_CONNECTION",
    "CONTAINERS_CONF",
    "CONTAINERS_STORAGE_CONF",
    "CONTAINERS_REGISTRIES_CONF",
)


class OciSubsystem(Subsystem):
    options_scope = "oci"
    help = softwrap(
        """
        The local container runtime (podman or docker) that `pants run` uses for `oci_image`
        targets: it loads the built image into the runtime's image store, then runs it
        interactively with the arguments given after `--`, and exits with the container's exit code.
        """
    )

    class EnvironmentAware(ExecutableSearchPathsOptionMixin, Subsystem.EnvironmentAware):
        executable_search_paths_help = softwrap(
            """
            Folders to look for the runtime in, in order.
            """
        )

        env_vars = StrListOption(
            default=list(DEFAULT_ENV_VARS),
            help=softwrap(
                """
                Environment variables the runtime's `load` gets from Pants' environment (`NAME` to
                pass it through, `NAME=value` to set it). `run` gets all of Pants' environment.
                """
            ),
            advanced=True,
        )

    runtime = StrOption(
        default=None,
        help=softwrap(
            f"""
            The runtime `pants run` uses: {' or '.join(f'`{r}`' for r in RUNTIMES)}, found on
            `[oci].executable_search_paths` (default: `PATH`). Default: the first of {', '.join(RUNTIMES)} found
            there. Set it whenever `global_args` or `run_args` are meant for one of them.
            """
        ),
    )
    global_args = ShellStrListOption(
        help=softwrap(
            """
            Arguments given to the runtime before its subcommand, for both `load` and `run`:
            e.g. podman's `--root DIR --runroot DIR --storage-driver vfs --runtime runc`, or
            docker's `--host unix:///run/user/1000/docker.sock`.
            """
        ),
    )
    run_args = ShellStrListOption(
        help=softwrap(
            """
            Arguments added to `run` before the image, after `--rm --interactive` (and `--tty`
            when stdin and stdout are terminals): e.g. `--network none --ulimit
            nofile=1024:1024 --env NAME=value --publish 127.0.0.1:8080:8080`.
            """
        ),
    )
