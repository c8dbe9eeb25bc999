"""Runs `python -m ocibuild ...` (the core library) as a cached, hermetic Process."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Tuple

import ocibuild
from pants.backend.python.target_types import EntryPoint
from pants.backend.python.util_rules import pex
from pants.backend.python.util_rules.pex import PexRequest, VenvPex, VenvPexProcess
from pants.engine.fs import EMPTY_DIGEST, CreateDigest, Digest, FileContent
from pants.engine.process import Process, ProcessCacheScope
from pants.engine.rules import Get, collect_rules, rule
from pants.util.logging import LogLevel
from pants_oci.subsystems.ocibuild_tool import OciBuildTool


@dataclass(frozen=True)
class OciBuildPex:
    pex: VenvPex


def _core_sources() -> Tuple[FileContent, ...]:
    """The `ocibuild` package's files, as they are in the plugin's own source tree."""
    package_dir = os.path.dirname(ocibuild.__file__)
    root = os.path.dirname(package_dir)
    files = []
    for dirpath, dirnames, filenames in os.walk(package_dir):
        dirnames[:] = sorted(d for d in dirnames if d != "__pycache__")
        for filename in sorted(filenames):
            if filename.endswith(".py"):
                path = os.path.join(dirpath, filename)
                with open(path, "rb") as f:
                    files.append(FileContent(os.path.relpath(path, root), f.read()))
    return tuple(files)


@rule(desc="Set up the ocibuild core library", level=LogLevel.DEBUG)
async def setup_ocibuild_pex(tool: OciBuildTool) -> OciBuildPex:
    sources = await Get(Digest, CreateDigest(_core_sources()))
    venv_pex = await Get(
        VenvPex,
        PexRequest,
        tool.to_pex_request(main=EntryPoint("ocibuild.__main__"), sources=sources),
    )
    return OciBuildPex(venv_pex)


@dataclass(frozen=True)
class OciBuildProcess:
    """`python -m ocibuild <argv>`; cached locally and remotely unless `cache_scope` says not."""

    argv: Tuple[str, ...]
    description: str
    input_digest: Digest = EMPTY_DIGEST
    output_files: Tuple[str, ...] = ()
    output_directories: Tuple[str, ...] = ()
    cache_scope: ProcessCacheScope = ProcessCacheScope.SUCCESSFUL
    level: LogLevel = LogLevel.INFO


@rule
async def ocibuild_process(request: OciBuildProcess, core: OciBuildPex) -> Process:
    return await Get(
        Process,
        VenvPexProcess(
            core.pex,
            argv=request.argv,
            description=request.description,
            input_digest=request.input_digest,
            output_files=request.output_files,
            output_directories=request.output_directories,
            cache_scope=request.cache_scope,
            level=request.level,
        ),
    )


def rules():
    return (*collect_rules(), *pex.rules())
