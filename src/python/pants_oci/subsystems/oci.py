"""`[oci]`: build settings (`source_date_epoch`), the container runtime for `pants run`; the
registries and signing key for `pants publish`."""

from __future__ import annotations

from typing import Any

from pants.core.util_rules.search_paths import ExecutableSearchPathsOptionMixin
from pants.option.option_types import DictOption, IntOption, ShellStrListOption, StrListOption, StrOption
from pants.option.subsystem import Subsystem
from pants.util.strutil import softwrap
from pants_oci.subsystems.registries import OciRegistries, OciRegistryError

# What `pants publish` and `pants oci-verify` see of Pants' environment by default: where
# credentials live (docker's config, credential helpers on PATH), the CI variables our registry
# client reads (every `OCI_REGISTRY_*` variable is passed too), and the signing key's password.
DEFAULT_PUBLISH_ENV_VARS = (
    "PATH",
    "HOME",
    "DOCKER_CONFIG",
    "REGISTRY_AUTH_FILE",
    "COSIGN_PASSWORD",
    "SSL_CERT_FILE",
    "REQUESTS_CA_BUNDLE",
)

SIGNATURE_FORMATS = ("simple", "bundle")

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

    # ----------------------------------------------------------------------------------------------
    # Building (`pants package`)
    # ----------------------------------------------------------------------------------------------
    source_date_epoch = IntOption(
        default=None,
        help=softwrap(
            """
            Seconds since the epoch to stamp on layer files and the image's `created` time, as
            SOURCE_DATE_EPOCH would. Default: APK layers use their newest package's build time,
            file layers 0, images the newest of their layers' times and their base's `created`
            (as apko does), so that outputs depend only on their inputs.
            """
        ),
    )

    # ----------------------------------------------------------------------------------------------
    # Publishing (`pants publish`) and verifying (`pants oci-verify`)
    # ----------------------------------------------------------------------------------------------
    _registries = DictOption[Any](
        help=softwrap(
            """
            Registries `pants publish` pushes `oci_image`s to, by alias, as in Pants' docker
            backend:

                [oci.registries.company]
                address = "registry.example.com:5000"  # host[:port][/path]
                default = true             # pushed to by targets that name no `registries`
                extra_image_tags = ["stable"]
                insecure = false           # plain http: for loopback registries only
                repository = "base/static" # overrides the target's `repository`
                skip_push = false

            A target's `registries` names them as `@company` or by address.
            """
        ),
        fromfile=True,
    )
    signing_key = StrOption(
        default=None,
        help=softwrap(
            """
            Private key `pants publish` signs every pushed manifest with, in cosign's format (a
            signature under the tag `sha256-<hex>.sig`): an ECDSA P-256 PEM (PKCS#8, encrypted or not)
            or cosign's own `cosign.key`. Relative to the build root. Unset: images are not signed.
            """
        ),
    )
    signing_key_password_env = StrOption(
        default="COSIGN_PASSWORD",
        help=softwrap(
            """
            Environment variable holding the signing key's password (the one cosign reads). Its value
            is never printed or logged.
            """
        ),
        advanced=True,
    )
    signature_format = StrOption(
        default="simple",
        help=softwrap(
            """
            `simple`: cosign's simple-signing signature manifest under `sha256-<hex>.sig` (what
            `cosign verify --key` reads by default). `bundle`: a Sigstore bundle v0.3 pushed as an
            OCI 1.1 referrer of the image (cosign 3's default), with the `sha256-<hex>` referrers tag
            where the registry has no referrers API.
            """
        ),
    )
    publish_env_vars = StrListOption(
        default=list(DEFAULT_PUBLISH_ENV_VARS),
        help=softwrap(
            """
            Environment variables `pants publish` and `pants oci-verify` get from Pants' environment
            (`NAME` to pass it through, `NAME=value` to set it): where credentials are
            (`DOCKER_CONFIG`, `HOME`), credential helpers' `PATH`, the signing key's password.
            Every `OCI_REGISTRY_*` variable (CI credentials, e.g. `OCI_REGISTRY_USERNAME`,
            `OCI_REGISTRY_GHCR_IO_PASSWORD`) is passed as well.
            """
        ),
        advanced=True,
    )

    def registries(self) -> OciRegistries:
        return OciRegistries.from_dict(self._registries)

    def checked_signature_format(self) -> str:
        if self.signature_format not in SIGNATURE_FORMATS:
            raise OciRegistryError(
                f"[oci].signature_format is {self.signature_format!r}: set it to "
                f"{' or '.join(SIGNATURE_FORMATS)}."
            )
        return self.signature_format
