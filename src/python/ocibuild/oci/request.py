"""The `oci-image` request (ocibuild.contract.OciImageRequest) as the builder's ImageRequest.

Relative paths in it are relative to the request file's folder; every layer blob is verified
against its descriptor here, before anything is built.
"""

from __future__ import annotations

import calendar
import dataclasses
import time
from pathlib import Path
from typing import List, Optional

from ocibuild.contract import ImageConfig, LayerDescriptor, OciImageRequest, read_request_file
from ocibuild.oci.config import ConfigOptions
from ocibuild.oci.image import ImageRequest
from ocibuild.oci.layers import load_layer_input
from ocibuild.oci.layout import load_layout
from ocibuild.sbom.build import descriptor_packages

__all__ = [
    "load_request",
    "image_request",
]


def _config_options(config: ImageConfig) -> ConfigOptions:
    return ConfigOptions(**{f.name: getattr(config, f.name) for f in dataclasses.fields(config)})


def _epoch_of(created: object) -> Optional[int]:
    """A config's `created` (RFC 3339, UTC) in seconds; None when absent or not UTC."""
    if not isinstance(created, str) or not created.endswith("Z"):
        return None
    try:
        return calendar.timegm(time.strptime(created[:19], "%Y-%m-%dT%H:%M:%S"))
    except ValueError:
        return None


def default_created(request: OciImageRequest, root: Path) -> Optional[int]:
    """`created` when the request sets none: as apko does, the newest build time among the image's
    packages, i.e. the newest of its layers' mtimes (an APK layer stamps every file with its newest
    package's build time) and its base's `created`. Unchanged packages keep the digest; a newer
    package moves the date. None (1970) when nothing records a time."""
    times: List[int] = []
    for layer in request.layers:
        path = root / layer.descriptor
        mtime = LayerDescriptor.from_json(path.read_bytes(), str(path)).mtime
        if mtime is not None:
            times.append(mtime)
    if request.base:
        for image in load_layout(root / request.base).images:
            epoch = _epoch_of(image.config.get("created"))
            if epoch is not None:
                times.append(epoch)
    return max(times) if times else None


def image_request(request: OciImageRequest, root: Path) -> ImageRequest:
    """The builder's request, with paths resolved against `root` and the layers verified."""
    layers = tuple(
        load_layer_input(
            root / layer.blob, root / layer.descriptor, layer.architecture, layer.created_by or ""
        )
        for layer in request.layers
    )
    return ImageRequest(
        repository=request.repository,
        tag=request.tag,
        layers=layers,
        config=_config_options(request.config),
        base=root / request.base if request.base else None,
        base_name=request.base_name,
        architectures=request.architectures,
        annotations=request.annotations,
        created=request.created if request.created is not None else default_created(request, root),
        locked=tuple(p for layer in request.layers for p in descriptor_packages(root / layer.descriptor)),
        compression=request.compression,
    )


def load_request(path: Path) -> ImageRequest:
    """Parse and check the request file, verifying every layer blob against its descriptor."""
    return image_request(read_request_file(OciImageRequest, str(path)), Path(path).parent)
