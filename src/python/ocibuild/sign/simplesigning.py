"""cosign's simple-signing payload, byte for byte as cosign writes it (sigstore/sigstore pkg/signature/payload).

    {"critical":{"identity":{"docker-reference":"REG/REPO"},"image":{"docker-manifest-digest":"sha256:..."},
     "type":"cosign container image signature"},"optional":null}

Go's json.Marshal of payload.SimpleContainerImage: struct field order, no spaces, HTML characters escaped.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Dict, Mapping, Optional

from ocibuild.common.digests import is_sha256_digest
from ocibuild.errors import OciBuildError
from ocibuild.sign.gojson import go_map, marshal

__all__ = [
    "COSIGN_SIGNATURE_TYPE",
    "SimpleSigningClaim",
    "simple_signing_payload",
    "parse_simple_signing_payload",
]

COSIGN_SIGNATURE_TYPE = "cosign container image signature"


def check_image_digest(digest: str) -> str:
    if not is_sha256_digest(digest):
        raise OciBuildError(f"{digest!r} is not an image digest (sha256:<64 lowercase hex>)")
    return digest


@dataclass(frozen=True)
class SimpleSigningClaim:
    docker_reference: str
    manifest_digest: str
    optional: Optional[Dict[str, Any]]


def simple_signing_payload(
    docker_reference: str, manifest_digest: str, annotations: Optional[Mapping[str, Any]] = None
) -> bytes:
    """The payload cosign signs for `docker_reference` (REG/REPO, as cosign's Repository.Name()) at the digest.

    `annotations` are cosign's `-a key=value` pairs (`optional`, a Go map: sorted keys); None gives `null`.
    """
    check_image_digest(manifest_digest)
    return marshal(
        {
            "critical": {
                "identity": {"docker-reference": docker_reference},
                "image": {"docker-manifest-digest": manifest_digest},
                "type": COSIGN_SIGNATURE_TYPE,
            },
            "optional": None if annotations is None else go_map(annotations),
        }
    )


def parse_simple_signing_payload(payload: bytes, origin: str) -> SimpleSigningClaim:
    """The claim in a payload, checked as cosign's payload.Cosign.UnmarshalJSON checks it."""
    try:
        data = json.loads(payload.decode("utf-8"))
        critical = data["critical"]
        claim_type = critical["type"]
        reference = critical["identity"]["docker-reference"]
        digest = critical["image"]["docker-manifest-digest"]
        optional = data.get("optional")
    except (UnicodeDecodeError, ValueError, KeyError, TypeError):
        raise OciBuildError(
            f"{origin}: the signature payload is not a simple-signing JSON document"
        ) from None
    if claim_type != COSIGN_SIGNATURE_TYPE:
        raise OciBuildError(
            f"{origin}: the signature payload has type {claim_type!r}, not {COSIGN_SIGNATURE_TYPE!r}"
        )
    if not isinstance(reference, str) or not isinstance(digest, str) or not is_sha256_digest(digest):
        raise OciBuildError(
            f"{origin}: the signature payload's docker-reference or docker-manifest-digest is malformed"
        )
    return SimpleSigningClaim(reference, digest, optional if isinstance(optional, dict) else None)
