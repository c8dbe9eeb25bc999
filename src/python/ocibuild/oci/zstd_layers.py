"""An image's own layers as zstd (`oci_image(compression="zstd")`).

The layer builders always write gzip, so one layer build serves gzip and zstd images alike; the image
build re-encodes the tar of each of its own layers (not the base's: those keep their encoding, as
crane and rules_oci do) into the layout as one deterministic zstd frame (ocibuild.common.compression),
and checks that it decompresses to the tar its diff_id names. The config's diff_ids do not change.
"""

from __future__ import annotations

import dataclasses
from typing import Dict, List, Mapping, Sequence

from ocibuild.common.compression import zstd_compress
from ocibuild.errors import OciBuildError
from ocibuild.oci.descriptors import LAYER_TAR_ZSTD, ZSTD_LAYER_MEDIA_TYPES
from ocibuild.oci.layers import LayerFacts, LayerInput, inspect_layer, open_uncompressed
from ocibuild.oci.layout import LayoutWriter, blob_path

__all__ = ["zstd_layers"]


def _reencode(writer: LayoutWriter, layer: LayerInput) -> LayerFacts:
    source = layer.facts
    with open_uncompressed(layer.blob, source.descriptor.media_type) as tar:
        descriptor = writer.add_written(
            LAYER_TAR_ZSTD, lambda out: zstd_compress(tar, out, source.uncompressed_size, str(layer.blob))
        )
    path = blob_path(writer.root, descriptor.digest)
    written = inspect_layer(path, LAYER_TAR_ZSTD)
    if (written.diff_id, written.uncompressed_size) != (source.diff_id, source.uncompressed_size):
        raise OciBuildError(
            f"{path}: the zstd encoding of {layer.blob} decompresses to {written.diff_id} "
            f"({written.uncompressed_size} bytes), not to its tar {source.diff_id} "
            f"({source.uncompressed_size} bytes): reinstall the pinned zstandard wheel"
        )
    return written


def zstd_layers(
    writer: LayoutWriter, per_target: Mapping[str, Sequence[LayerInput]]
) -> Dict[str, List[LayerInput]]:
    """Each target's layers with their blobs re-encoded as zstd blobs of `writer`'s layout; a layer
    shared by several targets is encoded once, a layer that is zstd already is kept."""
    encoded: Dict[str, LayerFacts] = {}  # source blob digest -> its zstd blob's facts
    out: Dict[str, List[LayerInput]] = {}
    for target, layers in per_target.items():
        out[target] = []
        for layer in layers:
            if layer.facts.descriptor.media_type in ZSTD_LAYER_MEDIA_TYPES:
                out[target].append(layer)
                continue
            key = layer.facts.descriptor.digest
            if key not in encoded:
                encoded[key] = _reencode(writer, layer)
            facts = encoded[key]
            blob = blob_path(writer.root, facts.descriptor.digest)
            out[target].append(dataclasses.replace(layer, blob=blob, facts=facts))
    return out
