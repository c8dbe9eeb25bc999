"""The signature image cosign pushes under the tag `sha256-<hex>.sig`, byte for byte as cosign builds it.

cosign (pkg/oci/static, pkg/oci/mutate, pkg/oci/empty) appends one layer per signature to
go-containerregistry's empty image with OCI media types: each layer is a simple-signing payload with
the base64 DER signature in the `dev.cosignproject.cosign/signature` annotation, and the config is the
empty image's config file re-marshalled with one zero-time history entry and one diff_id (the payload's
sha256) per layer. Appending re-marshals the existing manifest and config through go-containerregistry's
structs, so we rebuild them in those structs' field order (dropping fields Go does not know, as it does).
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass, field
from typing import Any, Dict, Mapping, Optional, Tuple

from ocibuild.common.digests import sha256_digest
from ocibuild.errors import OciBuildError
from ocibuild.sign.gojson import go_map, marshal
from ocibuild.sign.keys import PublicKey
from ocibuild.sign.simplesigning import check_image_digest

__all__ = [
    "SIMPLE_SIGNING_MEDIA_TYPE",
    "SIGNATURE_ANNOTATION",
    "SignatureLayer",
    "SignatureImage",
    "signature_tag",
    "signature_image",
    "parse_signature_manifest",
    "has_equivalent_signature",
]

SIMPLE_SIGNING_MEDIA_TYPE = "application/vnd.dev.cosign.simplesigning.v1+json"
SIGNATURE_ANNOTATION = "dev.cosignproject.cosign/signature"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
_ZERO_TIME = "0001-01-01T00:00:00Z"  # Go's time.Time{} as JSON: cosign records no creation time by default

# go-containerregistry v1 struct field orders (json tags); (name, omitempty).
_DESCRIPTOR_FIELDS = (
    ("mediaType", False),
    ("size", False),
    ("digest", False),
    ("data", True),
    ("urls", True),
    ("annotations", True),
    ("platform", True),
    ("artifactType", True),
)
_PLATFORM_FIELDS = (
    ("architecture", False),
    ("os", False),
    ("os.version", True),
    ("os.features", True),
    ("variant", True),
    ("features", True),
)
_MANIFEST_FIELDS = (
    ("schemaVersion", False),
    ("mediaType", True),
    ("config", False),
    ("layers", False),
    ("annotations", True),
    ("subject", True),
    ("artifactType", True),
)
_CONFIG_FILE_FIELDS = (
    ("architecture", False),
    ("author", True),
    ("container", True),
    ("created", False),
    ("docker_version", True),
    ("history", True),
    ("os", False),
    ("rootfs", False),
    ("config", False),
    ("os.version", True),
    ("variant", True),
    ("os.features", True),
)
_HISTORY_FIELDS = (
    ("author", True),
    ("created", False),
    ("created_by", True),
    ("comment", True),
    ("empty_layer", True),
)
_ZERO_VALUES: Dict[str, Any] = {
    "schemaVersion": 0,
    "size": 0,
    "architecture": "",
    "os": "",
    "created": _ZERO_TIME,
}


def _empty(value: Any) -> bool:
    return value is None or value == "" or value is False or value == 0 or value == [] or value == {}


def _go_struct(obj: Mapping[str, Any], fields: Tuple[Tuple[str, bool], ...], **nested: Any) -> Dict[str, Any]:
    """`obj` re-marshalled through a Go struct: its fields in order, omitempty honoured, unknown keys dropped."""
    out: Dict[str, Any] = {}
    for name, omitempty in fields:
        value = obj.get(name, _ZERO_VALUES.get(name))
        if omitempty and _empty(value):
            continue
        if name in nested and value is not None:
            value = nested[name](value)
        elif name == "annotations" and isinstance(value, dict):
            value = go_map(value)
        out[name] = value
    return out


def go_descriptor(desc: Mapping[str, Any]) -> Dict[str, Any]:
    return _go_struct(desc, _DESCRIPTOR_FIELDS, platform=lambda p: _go_struct(p, _PLATFORM_FIELDS))


def _go_manifest(manifest: Mapping[str, Any]) -> Dict[str, Any]:
    return _go_struct(
        manifest,
        _MANIFEST_FIELDS,
        config=go_descriptor,
        layers=lambda layers: [go_descriptor(d) for d in layers],
        subject=go_descriptor,
    )


def _go_rootfs(rootfs: Mapping[str, Any]) -> Dict[str, Any]:
    return {"type": rootfs.get("type", ""), "diff_ids": rootfs.get("diff_ids")}


def _go_config_file(config: Mapping[str, Any]) -> Dict[str, Any]:
    return _go_struct(
        config,
        _CONFIG_FILE_FIELDS,
        history=lambda history: [_go_struct(h, _HISTORY_FIELDS) for h in history],
        rootfs=_go_rootfs,
        config=lambda c: c,  # kept as read: cosign's is {}; Go would reorder a foreign one's fields
    )


@dataclass(frozen=True)
class SignatureLayer:
    """One signature: the signed payload and its ASN.1 DER ECDSA signature."""

    payload: bytes
    signature: bytes
    annotations: Mapping[str, str] = field(
        default_factory=dict
    )  # cert/bundle annotations; none for key signing
    media_type: str = SIMPLE_SIGNING_MEDIA_TYPE

    @property
    def digest(self) -> str:
        return sha256_digest(self.payload)

    @property
    def base64_signature(self) -> str:
        return base64.b64encode(self.signature).decode("ascii")

    def descriptor(self) -> Dict[str, Any]:
        annotations = {**self.annotations, SIGNATURE_ANNOTATION: self.base64_signature}
        return {
            "mediaType": self.media_type,
            "size": len(self.payload),
            "digest": self.digest,
            "annotations": annotations,
        }


@dataclass(frozen=True)
class SignatureImage:
    """The signature manifest to put under the `.sig` tag, and the blobs it needs (config and payloads)."""

    manifest: bytes
    config: bytes
    new_blobs: Dict[str, bytes]  # digest -> bytes, config included

    @property
    def digest(self) -> str:
        return sha256_digest(self.manifest)


def signature_tag(image_digest: str) -> str:
    """cosign's signature tag for an image digest: `sha256-<hex>.sig`."""
    check_image_digest(image_digest)
    return image_digest.replace(":", "-", 1) + ".sig"


def _empty_signatures() -> Tuple[Dict[str, Any], Dict[str, Any]]:
    """(manifest, config file) of cosign's empty.Signatures(): go-containerregistry's empty image, OCI types."""
    config = {
        "architecture": "",
        "created": _ZERO_TIME,
        "os": "",
        "rootfs": {"type": "layers", "diff_ids": []},
        "config": {},
    }
    manifest = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {"mediaType": OCI_CONFIG},
        "layers": [],
    }
    return manifest, config


def parse_signature_manifest(data: bytes, origin: str) -> Dict[str, Any]:
    try:
        manifest = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise OciBuildError(f"{origin}: the signature manifest is not JSON") from None
    layers = manifest.get("layers") if isinstance(manifest, dict) else None
    if not isinstance(layers, list) or not all(isinstance(d, dict) for d in layers):
        raise OciBuildError(f"{origin}: the signature manifest has no layers list")
    return manifest


def _parse_config(data: bytes, origin: str) -> Dict[str, Any]:
    try:
        config = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise OciBuildError(f"{origin}: the signature manifest's config is not JSON") from None
    if not isinstance(config, dict) or not isinstance(config.get("rootfs", {}), dict):
        raise OciBuildError(f"{origin}: the signature manifest's config is not an image config")
    return config


def has_equivalent_signature(manifest: Mapping[str, Any], layer: SignatureLayer, key: PublicKey) -> bool:
    """cosign's DupeDetector: a layer with the same payload, media type and annotations whose signature
    verifies with our key already says what we would add, so signing again changes nothing."""
    for existing in manifest.get("layers", []):
        annotations = existing.get("annotations") or {}
        if existing.get("digest") != layer.digest or existing.get("mediaType") != layer.media_type:
            continue
        if any(annotations.get(k) != v for k, v in layer.annotations.items() if k != SIGNATURE_ANNOTATION):
            continue
        try:
            signature = base64.b64decode(annotations.get(SIGNATURE_ANNOTATION, ""), validate=True)
        except (ValueError, TypeError):
            continue
        if signature and key.verifies(signature, layer.payload):
            return True
    return False


def signature_image(
    layer: SignatureLayer, existing: Optional[Tuple[bytes, bytes]] = None, origin: str = "signature manifest"
) -> SignatureImage:
    """The signature manifest with `layer` appended to `existing` (manifest bytes, config bytes), or alone."""
    if existing is None:
        manifest, config = _empty_signatures()
    else:
        manifest = parse_signature_manifest(existing[0], origin)
        config = _parse_config(existing[1], origin)
    config = dict(config)
    rootfs = dict(config.get("rootfs") or {"type": "layers"})
    rootfs["diff_ids"] = list(rootfs.get("diff_ids") or []) + [layer.digest]
    config["rootfs"] = rootfs
    config["history"] = list(config.get("history") or []) + [{"created": _ZERO_TIME}]
    config_bytes = marshal(_go_config_file(config))

    manifest = dict(manifest)
    manifest["config"] = {
        **manifest.get("config", {}),
        "size": len(config_bytes),
        "digest": sha256_digest(config_bytes),
    }
    manifest["layers"] = list(manifest["layers"]) + [layer.descriptor()]
    manifest_bytes = marshal(_go_manifest(manifest))
    blobs = {sha256_digest(config_bytes): config_bytes, layer.digest: layer.payload}
    return SignatureImage(manifest_bytes, config_bytes, blobs)
