"""Attach an image's SBOM as a signed attestation, the way `cosign attest --key --type spdxjson` does.

The attestation is an in-toto statement (subject: the image's name and manifest digest; predicate
type https://spdx.dev/Document; predicate: the SPDX document) in a DSSE envelope signed over the
PAE. "simple" format (cosign before 3): the envelope is a layer of media type
application/vnd.dsse.envelope.v1+json, annotations `dev.cosignproject.cosign/signature: ""` (the
signature is inside the envelope) and `predicateType`, appended to the attestation image under the
tag `sha256-<hex>.att` (cosign's pkg/oci/static NewAttestation, mutate.AttachAttestationToEntity,
built like the `.sig` image). "bundle" format (cosign 3, `--new-bundle-format`): a Sigstore bundle
with the envelope, pushed as an OCI 1.1 referrer whose `dev.sigstore.bundle.predicateType` names SPDX.

Where we differ from cosign, on purpose: `_type` is https://in-toto.io/Statement/v1 (cosign attest
still writes the v0.1 URI in the same v1-shaped statement; both parse as in-toto v1), and the
statement is Go-json-marshalled with the predicate's keys sorted (cosign goes through protojson,
whose spacing is randomised per build); verifiers parse it either way. Attesting again with the same
key and the same SBOM is a no-op, as signing is.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional

from ocibuild.errors import OciBuildError
from ocibuild.registry.client import RegistryClient
from ocibuild.sign.attach import (
    append_to_tag_image,
    bundle_referrer_carries,
    layer_carries,
    push_bundle_referrer,
)
from ocibuild.sign.bundle import (
    IN_TOTO_STATEMENT_V1,
    Statement,
    dsse_envelope,
    open_dsse_envelope,
    sign_statement_bundle,
)
from ocibuild.sign.cosign_manifest import SignatureLayer
from ocibuild.sign.gojson import go_map, marshal
from ocibuild.sign.keys import PublicKey, SigningKey
from ocibuild.sign.simplesigning import check_image_digest

__all__ = [
    "DSSE_MEDIA_TYPE",
    "SPDX_PREDICATE_TYPE",
    "PREDICATE_TYPE_ANNOTATION",
    "attestation_tag",
    "sbom_statement",
    "attestation_layer",
    "open_envelope",
    "attach_sbom",
    "sboms_by_manifest",
]

DSSE_MEDIA_TYPE = "application/vnd.dsse.envelope.v1+json"  # cosign's types.DssePayloadType
SPDX_PREDICATE_TYPE = "https://spdx.dev/Document"  # in-toto's PredicateSPDX, cosign's `--type spdxjson`
PREDICATE_TYPE_ANNOTATION = "predicateType"  # on each .att layer
_INDEX_ELEMENT = "SPDXRef-ImageIndex-"  # what an index's SBOM describes (ocibuild.sbom.spdx)


def attestation_tag(image_digest: str) -> str:
    """cosign's attestation tag for an image digest: `sha256-<hex>.att`."""
    return check_image_digest(image_digest).replace(":", "-", 1) + ".att"


def _sorted_keys(value: Any) -> Any:
    """protojson writes a Struct's keys sorted (cosign's predicate is a structpb.Struct)."""
    if isinstance(value, dict):
        return {k: _sorted_keys(value[k]) for k in go_map(value)}
    if isinstance(value, list):
        return [_sorted_keys(v) for v in value]
    return value


def sbom_statement(name: str, image_digest: str, document: bytes, origin: str = "SBOM") -> bytes:
    """The in-toto v1 statement of an SPDX JSON SBOM about `name@image_digest` (name: REG/REPO, the
    subject name cosign writes), fields in the proto's order."""
    algorithm, hex_digest = check_image_digest(image_digest).split(":", 1)
    try:
        predicate = json.loads(document.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise OciBuildError(f"{origin}: not a JSON SBOM; rebuild the image") from None
    if not isinstance(predicate, dict) or not str(predicate.get("spdxVersion", "")).startswith("SPDX-"):
        raise OciBuildError(f"{origin}: not an SPDX JSON document (no spdxVersion); rebuild the image")
    return marshal(
        {
            "_type": IN_TOTO_STATEMENT_V1,
            "subject": [{"name": name, "digest": {algorithm: hex_digest}}],
            "predicateType": SPDX_PREDICATE_TYPE,
            "predicate": _sorted_keys(predicate),
        }
    )


def attestation_layer(envelope: bytes) -> SignatureLayer:
    """The `.att` image's layer for a DSSE envelope (its signature annotation empty, as cosign's)."""
    return SignatureLayer(
        envelope, b"", {PREDICATE_TYPE_ANNOTATION: SPDX_PREDICATE_TYPE}, media_type=DSSE_MEDIA_TYPE
    )


def open_envelope(data: bytes, key: PublicKey, origin: str) -> Statement:
    """The statement of a DSSE envelope (cosign's `.att` layer), once its signature over the PAE
    verifies with `key`; OciBuildError naming what is wrong otherwise."""
    try:
        envelope = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise OciBuildError(f"{origin}: not a DSSE envelope (not JSON)") from None
    return open_dsse_envelope(envelope, key, origin)


def _attested_already_simple(
    client: RegistryClient, repository: str, manifest: Mapping[str, Any], statement: bytes, key: SigningKey
) -> bool:
    """Whether the `.att` image has a layer whose envelope, signed by this key, carries `statement`."""
    return layer_carries(
        client,
        repository,
        manifest,
        DSSE_MEDIA_TYPE,
        lambda blob: open_envelope(blob, key.public_key, "att"),
        statement,
    )


def _attach_simple(
    client: RegistryClient, repository: str, image_digest: str, statement: bytes, key: SigningKey
) -> str:
    tag = attestation_tag(image_digest)
    where = f"{client.registry}/{repository}:{tag}"
    if not append_to_tag_image(
        client,
        repository,
        tag,
        "attestation",
        lambda manifest: _attested_already_simple(client, repository, manifest, statement, key),
        lambda: attestation_layer(marshal(dsse_envelope(key, statement))),
    ):
        return f"already attested the SBOM of {image_digest} ({where})"
    return f"attested the SBOM of {image_digest} -> {where}"


def _attach_bundle(
    client: RegistryClient, repository: str, image_digest: str, statement: bytes, key: SigningKey
) -> str:
    image = client.get_manifest(repository, image_digest)
    if image is None:
        raise OciBuildError(
            f"{client.registry}/{repository}@{image_digest}: no such manifest in the registry; push it before "
            "attesting"
        )
    if bundle_referrer_carries(client, repository, image_digest, statement, key):
        return f"already attested the SBOM of {image_digest} (a Sigstore bundle referrer)"
    bundle = sign_statement_bundle(key, statement)
    where = push_bundle_referrer(client, repository, image, bundle, SPDX_PREDICATE_TYPE)
    return f"attested the SBOM of {image_digest} -> {where}"


def attach_sbom(
    client: RegistryClient,
    repository: str,
    image_digest: str,
    docker_reference: str,
    key: SigningKey,
    document: bytes,
    signature_format: str = "simple",
    origin: str = "SBOM",
) -> str:
    """Attest `document` (SPDX JSON) for the manifest `image_digest` of `repository`; a one-line
    description. `docker_reference` (REG/REPO) is the statement's subject name."""
    statement = sbom_statement(docker_reference, image_digest, document, origin)
    if signature_format == "simple":
        return _attach_simple(client, repository, image_digest, statement, key)
    if signature_format == "bundle":
        return _attach_bundle(client, repository, image_digest, statement, key)
    raise OciBuildError(f"unknown signature format {signature_format!r}; use simple or bundle")


def _described_digest(path: Path, data: bytes) -> Optional[str]:
    """The digest of the image an SBOM DESCRIBES (its package's SHA256); None for an index's SBOM."""
    try:
        doc = json.loads(data.decode("utf-8"))
        described = [
            r["relatedSpdxElement"]
            for r in doc.get("relationships") or []
            if r.get("spdxElementId") == "SPDXRef-DOCUMENT" and r.get("relationshipType") == "DESCRIBES"
        ]
        packages = {p["SPDXID"]: p for p in doc.get("packages") or []}
    except (UnicodeDecodeError, ValueError, KeyError, TypeError, AttributeError):
        raise OciBuildError(f"{path}: not an SPDX JSON document; rebuild the image") from None
    if len(described) != 1 or described[0] not in packages:
        raise OciBuildError(f"{path}: the SBOM describes {len(described)} elements, not one image")
    if described[0].startswith(_INDEX_ELEMENT):
        return None
    for checksum in packages[described[0]].get("checksums") or []:
        if checksum.get("algorithm") == "SHA256":
            return "sha256:" + str(checksum.get("checksumValue"))
    raise OciBuildError(f"{path}: the described image has no SHA256 checksum (its manifest digest)")


def sboms_by_manifest(folder: Path) -> Dict[str, bytes]:
    """The per-platform SBOMs of an oci-image output's `sbom/` folder, by the manifest digest each
    describes (the index's document is not attested: cosign attests manifests)."""
    found: Dict[str, bytes] = {}
    paths: List[Path] = sorted(folder.glob("*.spdx.json")) if folder.is_dir() else []
    if not paths:
        raise OciBuildError(
            f"{folder}: no SBOMs (*.spdx.json) to attach; build the image again (pants package)"
        )
    for path in paths:
        data = path.read_bytes()
        digest = _described_digest(path, data)
        if digest is not None:
            found[digest] = data
    return found
