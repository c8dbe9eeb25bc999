"""Runs `python -m ocibuild ...` (the core library) as a cached, hermetic Process."""

from __future__ import annotations

import dataclasses
import importlib.resources
import pathlib
import posixpath
from dataclasses import dataclass
from typing import TYPE_CHECKING, Optional, Tuple

from ocibuild.contract import RELOCK, REQUEST_FILE, Request
from pants.backend.python.target_types import EntryPoint
from pants.backend.python.util_rules import pex
from pants.backend.python.util_rules.pex import PexRequest, VenvPex, VenvPexProcess
from pants.base.build_root import BuildRoot
from pants.engine.fs import (
    EMPTY_DIGEST,
    CreateDigest,
    Digest,
    FileContent,
    GlobMatchErrorBehavior,
    MergeDigests,
    PathGlobs,
    RemovePrefix,
)
from pants.engine.process import FallibleProcessResult, Process, ProcessCacheScope
from pants.engine.rules import Get, collect_rules, rule
from pants.util.docutil import bin_name
from pants.util.logging import LogLevel
from pants_oci.errors import OciBuildCoreError, OciBuildProcessError
from pants_oci.subsystems.ocibuild_tool import OciBuildTool

if TYPE_CHECKING:
    from importlib.abc import Traversable

CORE_PACKAGE = "ocibuild"

# How long a remote cache lookup may take before Pants also starts the Process locally (2.17's default
# is 0: every hit would prepare a sandbox, fetch its inputs and spawn a copy that is then killed). A miss
# answered sooner starts the local run at once; this only bounds the wait for a slow answer.
REMOTE_CACHE_SPECULATION_DELAY_MILLIS = 2000


@dataclass(frozen=True)
class OciBuildPex:
    pex: VenvPex


def _core_sources() -> Tuple[FileContent, ...]:
    """The `ocibuild` package's Python files, read through its importer (importlib.resources).

    The same whether `ocibuild` comes from this repository's sources (`pythonpath`) or from the
    installed `pants-oci` wheel (site-packages, or a zip): the package's own files, not a walk of
    whatever folder happens to hold it. Its requirements come from `[ocibuild]`'s lockfile."""
    files = []

    def walk(node: Traversable, rel: str) -> None:
        for child in sorted(node.iterdir(), key=lambda c: c.name):
            path = f"{rel}/{child.name}"
            if child.is_dir():
                if child.name != "__pycache__":
                    walk(child, path)
            elif child.name.endswith(".py"):
                files.append(FileContent(path, child.read_bytes()))

    walk(importlib.resources.files(CORE_PACKAGE), CORE_PACKAGE)
    if f"{CORE_PACKAGE}/__main__.py" not in {f.path for f in files}:
        raise OciBuildCoreError(
            f"the `{CORE_PACKAGE}` package's files are not readable (no {CORE_PACKAGE}/__main__.py)"
        )
    return tuple(files)


def _core_dir_in(build_root: str) -> Optional[str]:
    """The core package's folder relative to the build root when the build root holds it (this
    repository, with `src/python` on `pythonpath`); None when it comes from an installed wheel."""
    root = importlib.resources.files(CORE_PACKAGE)
    if not isinstance(root, pathlib.Path):
        return None
    try:
        return root.resolve().relative_to(pathlib.Path(build_root).resolve()).as_posix()
    except ValueError:
        return None


async def _core_digest(build_root: BuildRoot) -> Digest:
    core_dir = _core_dir_in(build_root.path)
    if core_dir is None:
        return await Get(Digest, CreateDigest(_core_sources()))
    # Read through the engine, which watches the build root: pantsd then rebuilds the PEX when a core
    # file changes (a read through importlib is memoized for pantsd's lifetime: stale builds).
    files = await Get(
        Digest,
        PathGlobs(
            [f"{core_dir}/**/*.py", f"{core_dir}/__main__.py"],
            glob_match_error_behavior=GlobMatchErrorBehavior.error,
            description_of_origin=f"the `{CORE_PACKAGE}` core library",
        ),
    )
    parent = posixpath.dirname(core_dir)
    return await Get(Digest, RemovePrefix(files, parent)) if parent else files


@rule(desc="Set up the ocibuild core library", level=LogLevel.DEBUG)
async def setup_ocibuild_pex(tool: OciBuildTool, build_root: BuildRoot) -> OciBuildPex:
    sources = await _core_digest(build_root)
    venv_pex = await Get(
        VenvPex,
        PexRequest,
        tool.to_pex_request(main=EntryPoint("ocibuild.__main__"), sources=sources),
    )
    return OciBuildPex(venv_pex)


@dataclass(frozen=True)
class OciBuildProcess:
    """`python -m ocibuild <command> --request=request.json` with `request` (an ocibuild.contract
    request) in that file beside `input_digest`'s files: the one way the plugin talks to the core.
    Cached locally and remotely unless `cache_scope` says not."""

    request: Request
    description: str
    input_digest: Digest = EMPTY_DIGEST
    output_files: Tuple[str, ...] = ()
    output_directories: Tuple[str, ...] = ()
    cache_scope: ProcessCacheScope = ProcessCacheScope.SUCCESSFUL
    level: LogLevel = LogLevel.INFO


@dataclass(frozen=True)
class OciBuildResult:
    """The outputs of a successful `python -m ocibuild` Process."""

    output_digest: Digest
    stdout: bytes


def relock_hint(message: str, resolve: Optional[str] = None) -> str:
    """The core's message, with the Pants command that re-locks where it says to re-lock (the core
    names no Pants command line)."""
    if RELOCK not in message:
        return message
    how = f" --resolve={resolve}" if resolve else ""
    return f"{message.rstrip('.')}: run `{bin_name()} generate-lockfiles{how}`."


@rule
async def run_ocibuild(request: OciBuildProcess) -> OciBuildResult:
    """Runs the Process; a failure is the core's `error:` line (plus the plugin's hints), else, for a
    crash, its last lines of output."""
    result = await Get(FallibleProcessResult, OciBuildProcess, request)
    if result.exit_code == 0:
        return OciBuildResult(result.output_digest, result.stdout)
    stderr = result.stderr.decode("utf-8", "replace").strip().splitlines()
    errors = [line[len("error: ") :] for line in stderr if line.startswith("error: ")]
    detail = relock_hint(errors[-1]) if errors else " / ".join(stderr[-3:]) or f"exit code {result.exit_code}"
    raise OciBuildProcessError(f"{request.description} failed: {detail}")


@rule
async def ocibuild_process(request: OciBuildProcess, core: OciBuildPex) -> Process:
    request_file = await Get(Digest, CreateDigest([FileContent(REQUEST_FILE, request.request.to_json())]))
    input_digest = await Get(Digest, MergeDigests([request.input_digest, request_file]))
    process = await Get(
        Process,
        VenvPexProcess(
            core.pex,
            argv=request.request.argv(),
            description=request.description,
            input_digest=input_digest,
            output_files=request.output_files,
            output_directories=request.output_directories,
            cache_scope=request.cache_scope,
            level=request.level,
        ),
    )
    return dataclasses.replace(
        process, remote_cache_speculation_delay_millis=REMOTE_CACHE_SPECULATION_DELAY_MILLIS
    )


def rules():
    return (*collect_rules(), *pex.rules())
