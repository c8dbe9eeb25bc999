"""`pants run` for `oci_image`: load the built image into podman or docker, then run it.

Modelled on Pants' docker backend (`pants.backend.docker.goals.run_image`): a `RunFieldSet` whose
rule builds the image and returns a `RunRequest`. The image is loaded by a `Process` run once per
session (`podman load -i image.oci.tar`; `docker load -i image.docker.tar`, the only format
Docker 20.10 loads), then the `run` goal runs `<runtime> <global args> run --rm --interactive
[--tty] <run args> <image id> <args after -->` in the workspace and exits with its exit code.

The argv builders below are plain functions (tests/plugin/test_plugin_run_argv.py).
"""

from __future__ import annotations

import logging
import os
import platform
from dataclasses import dataclass
from typing import Mapping, Optional, Sequence, Tuple

from ocibuild.common.architectures import host_alpine_arch
from ocibuild.contract import IMAGE_METADATA, ImageMetadata
from pants.core.goals.run import RunFieldSet, RunInSandboxBehavior, RunRequest
from pants.core.util_rules.system_binaries import BinaryPathRequest, BinaryPaths
from pants.engine.env_vars import EnvironmentVars, EnvironmentVarsRequest
from pants.engine.fs import EMPTY_DIGEST, DigestContents, DigestSubset, PathGlobs
from pants.engine.process import FallibleProcessResult, Process, ProcessCacheScope
from pants.engine.rules import Get, MultiGet, collect_rules, rule
from pants.engine.target import WrappedTarget, WrappedTargetRequest
from pants.util.logging import LogLevel
from pants_oci.goals.package import BuiltImage, OciImageFieldSet
from pants_oci.subsystems.oci import RUNTIMES, OciSubsystem
from pants_oci.target_types import OciImageLayersField

logger = logging.getLogger(__name__)


class RunImageError(Exception):
    """A one-line reason why an image cannot be run, naming the target and what to do."""


# --------------------------------------------------------------------------------------------------
# Plain functions: which runtime, which platform, which argv
# --------------------------------------------------------------------------------------------------


def host_architecture(machine: Optional[str] = None) -> str:
    machine = platform.machine() if machine is None else machine
    return host_alpine_arch(machine)  # the names image.json's `images` use


@dataclass(frozen=True)
class Runtime:
    name: str  # "podman" or "docker"
    path: str


def choose_runtime(
    configured: Optional[str], found: Mapping[str, Sequence[str]], search_path: Sequence[str], owner: str
) -> Runtime:
    """The configured runtime, else the first of RUNTIMES found; `found` maps name -> paths found."""
    where = os.pathsep.join(search_path) or "<empty>"
    if configured:
        if configured not in RUNTIMES:
            raise RunImageError(
                f"[oci].runtime is {configured!r}: set it to {' or '.join(RUNTIMES)} (or unset it to use the first found)."
            )
        paths = found.get(configured) or ()
        if not paths:
            raise RunImageError(
                f"{owner}: the runtime {configured} ([oci].runtime) is not on the search path ({where}): "
                "install it, or fix [oci].executable_search_paths or [oci].runtime."
            )
        return Runtime(configured, paths[0])
    for name in RUNTIMES:
        paths = found.get(name) or ()
        if paths:
            return Runtime(name, paths[0])
    raise RunImageError(
        f"{owner}: `pants run` needs podman or docker, and neither is on the search path ({where}): "
        "install one, or set [oci].runtime and [oci].executable_search_paths."
    )


@dataclass(frozen=True)
class ImageToRun:
    platform: str  # e.g. linux/amd64
    image_id: str  # the config's digest: podman's and docker's image ID
    archive: str  # the archive to load, relative to the image's output directory


def choose_image(metadata: ImageMetadata, runtime: str, host_arch: str, owner: str) -> ImageToRun:
    """The host's platform of the image (or its only one) and the archive `runtime` loads it from."""
    images = dict(metadata.images)
    if not images:
        raise RunImageError(f"{owner}: the built image has no platforms in {IMAGE_METADATA}; rebuild it.")
    if len(images) == 1:
        ((name, entry),) = images.items()
    else:
        matches = [(n, e) for n, e in images.items() if e.architecture == host_arch]
        if not matches:
            raise RunImageError(
                f"{owner}: the image is built for {', '.join(sorted(images))}, none of them this "
                f"machine's architecture ({host_arch}): add {host_arch} to its architectures."
            )
        ((name, entry),) = matches
    # podman loads the oci-archive; Docker 20.10 loads only docker-archives, one per platform.
    if runtime == "podman" and len(images) == 1:
        archive = metadata.oci_archive
    else:
        archive = entry.docker_archive
    return ImageToRun(name, entry.config, archive)


def load_argv(runtime: Runtime, global_args: Sequence[str], archive: str) -> Tuple[str, ...]:
    return (runtime.path, *global_args, "load", "--quiet", "--input", archive)


# Runs its arguments, replacing the first `--tty=auto` by `--tty=true` when stdin and stdout are
# terminals, else `--tty=false`: decided when the container starts, in the terminal `pants run`
# gives it (an option default would be decided wherever Pants' options are parsed, e.g. pantsd).
TTY_AUTO = "--tty=auto"
TTY_SCRIPT = (
    "tty=--tty=false; if [ -t 0 ] && [ -t 1 ]; then tty=--tty=true; fi; seen=; "
    'for arg do shift; if [ -z "$seen" ] && [ "$arg" = ' + TTY_AUTO + " ]; then arg=$tty; seen=1; fi; "
    'set -- "$@" "$arg"; done; exec "$@"'
)


def run_argv(
    runtime: Runtime, global_args: Sequence[str], run_args: Sequence[str], image: str, sh: str = "/bin/sh"
) -> Tuple[str, ...]:
    """`<runtime> <global args> run --rm --interactive --tty=<auto> <run args> <image>`.

    The `run` goal appends the arguments given after `--`, which become the container's command
    arguments (after the image's entrypoint).
    """
    return (
        sh,
        "-c",
        TTY_SCRIPT,
        "pants-oci-run",
        runtime.path,
        *global_args,
        "run",
        "--rm",
        "--interactive",
        TTY_AUTO,
        *run_args,
        image,
    )


def refusal_detail(result_stderr: bytes, result_stdout: bytes) -> str:
    """The runtime's last non-empty line of output: its error message."""
    for stream in (result_stderr, result_stdout):
        lines = [line.strip() for line in stream.decode("utf-8", "replace").splitlines() if line.strip()]
        if lines:
            return lines[-1]
    return "no output"


# --------------------------------------------------------------------------------------------------
# Rules
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class OciImageRunFieldSet(RunFieldSet):
    required_fields = (OciImageLayersField,)
    # Loading changes the runtime's image store: not something to cache as a sandboxed run.
    run_in_sandbox_behavior = RunInSandboxBehavior.RUN_REQUEST_NOT_HERMETIC


@dataclass(frozen=True)
class RuntimeRequest:
    owner: str


@rule(desc="Find the container runtime", level=LogLevel.DEBUG)
async def find_runtime(
    request: RuntimeRequest, oci: OciSubsystem, oci_env: OciSubsystem.EnvironmentAware
) -> Runtime:
    names = (oci.runtime,) if oci.runtime in RUNTIMES else RUNTIMES
    search_path = oci_env.executable_search_path
    found = await MultiGet(
        Get(BinaryPaths, BinaryPathRequest(binary_name=name, search_path=search_path)) for name in names
    )
    return choose_runtime(
        oci.runtime,
        {name: [p.path for p in paths.paths] for name, paths in zip(names, found)},
        search_path,
        request.owner,
    )


@rule(desc="Load an OCI image into the container runtime")
async def run_oci_image(
    field_set: OciImageRunFieldSet, oci: OciSubsystem, oci_env: OciSubsystem.EnvironmentAware
) -> RunRequest:
    owner = str(field_set.address)
    # The runtime first: without one, fail before building anything.
    runtime = await Get(Runtime, RuntimeRequest(owner))
    wrapped = await Get(
        WrappedTarget, WrappedTargetRequest(field_set.address, description_of_origin="`pants run`")
    )
    image, env = await MultiGet(
        Get(BuiltImage, OciImageFieldSet, OciImageFieldSet.create(wrapped.target)),
        Get(EnvironmentVars, EnvironmentVarsRequest(oci_env.env_vars)),
    )
    contents = await Get(
        DigestContents, DigestSubset(image.digest, PathGlobs([f"{image.directory}/{IMAGE_METADATA}"]))
    )
    metadata = ImageMetadata.from_json(contents[0].content, contents[0].path)
    chosen = choose_image(metadata, runtime.name, host_architecture(), owner)
    archive = f"{image.directory}/{chosen.archive}"
    loaded = await Get(
        FallibleProcessResult,
        Process(
            argv=load_argv(runtime, oci.global_args, archive),
            description=f"Load {image.reference} ({chosen.platform}) into {runtime.name}",
            input_digest=image.digest,
            env=env,
            cache_scope=ProcessCacheScope.PER_SESSION,
            level=LogLevel.DEBUG,
        ),
    )
    if loaded.exit_code != 0:
        raise RunImageError(
            f"{owner}: {runtime.name} ({runtime.path}) refused the image {chosen.archive} "
            f"(exit code {loaded.exit_code}): {refusal_detail(loaded.stderr, loaded.stdout)}"
        )
    logger.info(f"Loaded {image.reference} ({chosen.platform}, {chosen.image_id}) into {runtime.name}.")
    return RunRequest(
        digest=EMPTY_DIGEST,
        args=run_argv(runtime, oci.global_args, oci.run_args, chosen.image_id),
        extra_env=env,
    )


def rules():
    return (*collect_rules(), *OciSubsystem.rules(), *OciImageRunFieldSet.rules())
