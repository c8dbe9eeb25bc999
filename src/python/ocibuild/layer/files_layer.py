"""A layer of plain files (binaries, configs) placed under one directory of the image."""

from __future__ import annotations

import os
import posixpath
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence, Tuple

from ocibuild.common.atomic import write_bytes_atomically
from ocibuild.errors import OciBuildError
from ocibuild.layer.accounts import MAX_ID
from ocibuild.layer.tarball import DIR, FILE, LayerBlob, TarEntry, check_relative_path, write_layer

__all__ = [
    "DESCRIPTOR_SCHEMA",
    "FilesLayerOptions",
    "parse_owner",
    "parse_mode",
    "files_layer_entries",
    "build_files_layer",
]

DESCRIPTOR_SCHEMA = "ocibuild.files-layer.v1"


@dataclass(frozen=True)
class FilesLayerOptions:
    destination: str  # absolute directory in the image
    uid: int = 0
    gid: int = 0
    mode: Optional[int] = None  # None: 0755 for executables, else 0644
    mtime: int = 0


def parse_owner(text: str) -> Tuple[int, int]:
    try:
        uid, gid = (int(part) for part in text.split(":"))
    except ValueError:
        raise OciBuildError(f"owner {text!r}: expected numeric `uid:gid`, e.g. 65532:65532") from None
    if not (0 <= uid <= MAX_ID and 0 <= gid <= MAX_ID):
        raise OciBuildError(f"owner {text!r}: ids must be from 0 to {MAX_ID}")
    return uid, gid


def parse_mode(text: str) -> int:
    try:
        mode = int(text, 8)
    except ValueError:
        raise OciBuildError(f"file mode {text!r}: expected an octal mode such as 0755") from None
    if not 0 <= mode <= 0o777:
        raise OciBuildError(f"file mode {text!r}: only permission bits (0 to 0777) are allowed")
    return mode


def files_layer_entries(sources: Sequence[str], options: FilesLayerOptions) -> List[TarEntry]:
    """Each source file at `destination/<basename>`, with the destination's parent directories."""
    if not options.destination.startswith("/"):
        raise OciBuildError(f"destination {options.destination!r}: must be an absolute path in the image")
    directory = options.destination.strip("/")
    if directory:
        check_relative_path(directory, f"destination {options.destination!r}")
    entries: List[TarEntry] = []
    parts = directory.split("/") if directory else []
    for depth in range(1, len(parts) + 1):
        entries.append(TarEntry("/".join(parts[:depth]), DIR, 0o755))
    placed: Dict[str, str] = {}
    for source in sources:
        name = os.path.basename(source)
        if name in placed:
            raise OciBuildError(
                f"{source} and {placed[name]} would both be {posixpath.join(options.destination, name)}: "
                "put them in separate layers or rename one"
            )
        placed[name] = source
        if not os.path.isfile(source):
            raise OciBuildError(f"{source}: not a regular file")
        executable = os.stat(source).st_mode & 0o111
        mode = options.mode if options.mode is not None else (0o755 if executable else 0o644)
        path = f"{directory}/{name}" if directory else name
        entries.append(TarEntry(path, FILE, mode, options.uid, options.gid, source=source))
    return entries


def build_files_layer(
    sources: Sequence[str], options: FilesLayerOptions, output_layer: str, output_descriptor: str
) -> LayerBlob:
    blob = write_layer(files_layer_entries(sources, options), output_layer, mtime=options.mtime)
    files = sorted(posixpath.join(options.destination, os.path.basename(s)) for s in sources)
    write_bytes_atomically(
        output_descriptor, blob.descriptor_json(DESCRIPTOR_SCHEMA, options.mtime, files=files).encode()
    )
    return blob
