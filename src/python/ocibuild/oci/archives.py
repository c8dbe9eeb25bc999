"""Deterministic tar archives of an image: the oci-archive (`podman load`) and docker-archives (`docker load`).

Entries are sorted, owned by 0:0 with no user/group names, mtime 0, fixed modes: the bytes depend
only on the content.
"""

from __future__ import annotations

import io
import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Callable, Dict, List, Optional, Sequence, Tuple

from ocibuild.common.atomic import atomic_output
from ocibuild.oci.descriptors import canonical_json
from ocibuild.oci.layers import LayerFacts, open_uncompressed
from ocibuild.oci.layout import INDEX_FILE, layout_files

__all__ = ["write_oci_archive", "DockerImage", "write_docker_archive"]

# name -> (size, opener); None for a directory entry
_TarSource = Optional[Tuple[int, Callable[[], BinaryIO]]]


def _tarinfo(name: str, size: int, directory: bool) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.mtime = 0
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    if directory:
        info.type = tarfile.DIRTYPE
        info.mode = 0o755
    else:
        info.size = size
        info.mode = 0o644
    return info


def _write_tar(path: Path, entries: Dict[str, _TarSource]) -> None:
    """A plain tar of `entries`, sorted by name, written all or nothing."""
    with atomic_output(str(path)) as out, tarfile.open(
        fileobj=out, mode="w", format=tarfile.USTAR_FORMAT
    ) as tar:
        for name in sorted(entries):
            source = entries[name]
            if source is None:
                tar.addfile(_tarinfo(name, 0, directory=True))
                continue
            size, opener = source
            with opener() as f:
                tar.addfile(_tarinfo(name, size, directory=False), f)


def _file(path: Path) -> _TarSource:
    return (path.stat().st_size, lambda: open(path, "rb"))


def _bytes(data: bytes) -> _TarSource:
    return (len(data), lambda: io.BytesIO(data))


def write_oci_archive(layout: Path, path: Path, index: bytes) -> None:
    """The layout as a tar with `oci-layout`, `index.json` and `blobs/` at its root.

    `index` replaces the layout's index.json: `podman load` names the image after its ref.name
    annotation, which must therefore be the full `repository:tag` (a bare tag gives `localhost/TAG`).
    """
    entries: Dict[str, _TarSource] = {"blobs/": None, "blobs/sha256/": None}
    for name in layout_files(layout):
        entries[name] = _file(layout / name)
    entries[INDEX_FILE] = _bytes(index)
    _write_tar(path, entries)


@dataclass(frozen=True)
class DockerImage:
    """What a docker-archive of one platform's image needs."""

    config: bytes
    config_digest: str
    layers: Sequence[Tuple[Path, LayerFacts]]  # blob file and its facts, bottom first
    repo_tag: str  # repository:tag


def write_docker_archive(image: DockerImage, path: Path) -> None:
    """`docker load` format (as `docker save` and skopeo write it), which Docker 20.10 accepts.

    Layers go in uncompressed as `<diff_id hex>.tar` (checked against their diff_id while reading).
    """
    entries: Dict[str, _TarSource] = {}
    layer_names: List[str] = []
    for blob, facts in image.layers:
        name = facts.diff_id.split(":", 1)[1] + ".tar"
        layer_names.append(name)
        entries[name] = (facts.uncompressed_size, _opener(blob, facts))
    config_name = image.config_digest.split(":", 1)[1] + ".json"
    entries[config_name] = _bytes(image.config)
    manifest = [{"Config": config_name, "RepoTags": [image.repo_tag], "Layers": layer_names}]
    entries["manifest.json"] = _bytes(canonical_json(manifest))
    if layer_names:
        repository, _, tag = image.repo_tag.rpartition(":")
        top = layer_names[-1][: -len(".tar")]
        entries["repositories"] = _bytes(canonical_json({repository: {tag: top}}))
    _write_tar(path, entries)


def _opener(blob: Path, facts: LayerFacts) -> Callable[[], BinaryIO]:
    return lambda: open_uncompressed(blob, facts.descriptor.media_type)
