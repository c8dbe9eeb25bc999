"""The `oci-image` request (ocibuild.contract.OciImageRequest) as the builder's ImageRequest.

Relative paths in it are relative to the request file's folder; every layer blob is verified
against its descriptor here, before anything is built.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from ocibuild.contract import ImageConfig, OciImageRequest, read_request_file
from ocibuild.oci.config import ConfigOptions
from ocibuild.oci.image import ImageRequest
from ocibuild.oci.layers import load_layer_input
from ocibuild.sbom.build import descriptor_packages

__all__ = [
    "load_request",
    "image_request",
]


def _config_options(config: ImageConfig) -> ConfigOptions:
    return ConfigOptions(**{f.name: getattr(config, f.name) for f in dataclasses.fields(config)})


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
        created=request.created,
        locked=tuple(p for layer in request.layers for p in descriptor_packages(root / layer.descriptor)),
    )


def load_request(path: Path) -> ImageRequest:
    """Parse and check the request file, verifying every layer blob against its descriptor."""
    return image_request(read_request_file(OciImageRequest, str(path)), Path(path).parent)
