"""The Sigstore bundle v0.3 that cosign 3 signs images with (`cosign sign --new-bundle-format --key ...`).

cosign (cmd/cosign/cli/sign signDigestBundle, pkg/oci/remote WriteAttestationNewBundleFormat) signs an
in-toto v1 statement whose subject is the image digest and whose predicate type is
https://sigstore.dev/cosign/sign/v1, as a DSSE envelope (ECDSA over the DSSE PAE), in a bundle whose
verification material is the public key's hint. The bundle is pushed as an OCI 1.1 referrer: a
manifest with an empty config, the bundle as its one layer, `subject` the image and `artifactType` the
bundle media type. Registries without the referrers API get go-containerregistry's tag fallback: an
index under `sha256-<hex>` listing the referrers. Unlike cosign we leave out the
`org.opencontainers.image.created` annotation: no wall-clock time in manifests.

JSON is written in protojson's field order; protojson itself is not byte-stable across builds, so
only the signed bytes matter, and verifiers parse them.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from typing import Any, Dict, List, Mapping, Optional

from ocibuild.common.digests import sha256_digest
from ocibuild.errors import OciBuildError
from ocibuild.sign.cosign_manifest import OCI_MANIFEST, go_descriptor
from ocibuild.sign.gojson import go_bytes, go_map, marshal
from ocibuild.sign.keys import PublicKey, SigningKey
from ocibuild.sign.simplesigning import check_image_digest

__all__ = [
    "BUNDLE_MEDIA_TYPE",
    "COSIGN_SIGN_PREDICATE_TYPE",
    "IN_TOTO_PAYLOAD_TYPE",
    "IN_TOTO_STATEMENT_V1",
    "SignedBundle",
    "Statement",
    "sign_bundle",
    "sign_statement_bundle",
    "dsse_envelope",
    "pae",
    "referrer_manifest",
    "referrers_tag",
    "updated_referrers_index",
    "parse_bundle",
    "open_dsse_envelope",
]

BUNDLE_MEDIA_TYPE = "application/vnd.dev.sigstore.bundle.v0.3+json"
COSIGN_SIGN_PREDICATE_TYPE = "https://sigstore.dev/cosign/sign/v1"
IN_TOTO_PAYLOAD_TYPE = "application/vnd.in-toto+json"
IN_TOTO_STATEMENT_V1 = "https://in-toto.io/Statement/v1"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_EMPTY = "application/vnd.oci.empty.v1+json"
EMPTY_BLOB = b"{}"
BUNDLE_PREDICATE_TYPE_ANNOTATION = "dev.sigstore.bundle.predicateType"


def pae(payload_type: str, payload: bytes) -> bytes:
    """DSSE's pre-authentication encoding, what the envelope's signature covers."""
    kind = payload_type.encode("utf-8")
    return b"DSSEv1 %d %s %d %s" % (len(kind), kind, len(payload), payload)


def statement_for(image_digest: str) -> bytes:
    """cosign's in-toto statement for signing an image (protojson of intotov1.Statement, fields in order)."""
    algorithm, hex_digest = check_image_digest(image_digest).split(":", 1)
    return marshal(
        {
            "_type": IN_TOTO_STATEMENT_V1,
            "subject": [{"digest": {algorithm: hex_digest}, "annotations": {}}],
            "predicateType": COSIGN_SIGN_PREDICATE_TYPE,
            "predicate": {},
        }
    )


@dataclass(frozen=True)
class SignedBundle:
    data: bytes  # the bundle JSON, the referrer's one layer

    @property
    def digest(self) -> str:
        return sha256_digest(self.data)


def dsse_envelope(key: SigningKey, statement: bytes) -> Dict[str, Any]:
    """A DSSE envelope of an in-toto statement, signed over the PAE, in the field order of the Go
    structs cosign marshals (protobuf-specs' Envelope: payload, payloadType, signatures; an empty
    keyid is left out)."""
    signature = key.sign(pae(IN_TOTO_PAYLOAD_TYPE, statement))
    return {
        "payload": go_bytes(statement),
        "payloadType": IN_TOTO_PAYLOAD_TYPE,
        "signatures": [{"sig": go_bytes(signature)}],
    }


def sign_statement_bundle(key: SigningKey, statement: bytes) -> SignedBundle:
    """A Sigstore bundle carrying `statement` in a DSSE envelope signed by `key`."""
    bundle = {
        "mediaType": BUNDLE_MEDIA_TYPE,
        "verificationMaterial": {"publicKey": {"hint": key.public_key.hint()}},
        "dsseEnvelope": dsse_envelope(key, statement),
    }
    return SignedBundle(marshal(bundle))


def sign_bundle(key: SigningKey, image_digest: str) -> SignedBundle:
    """cosign 3's signature of an image: its sign statement in a bundle."""
    return sign_statement_bundle(key, statement_for(image_digest))


def referrer_manifest(
    bundle: SignedBundle, subject: Mapping[str, Any], predicate_type: str = COSIGN_SIGN_PREDICATE_TYPE
) -> bytes:
    """cosign's WriteReferrer manifest for a bundle; `subject` is the image's descriptor (mediaType, size, digest).
    `predicate_type` is the statement's: cosign's sign predicate, or an attestation's (an SBOM's)."""
    manifest = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {
            "mediaType": OCI_EMPTY,
            "size": len(EMPTY_BLOB),
            "digest": sha256_digest(EMPTY_BLOB),
            "artifactType": BUNDLE_MEDIA_TYPE,  # sic: cosign sets it on the config descriptor too
        },
        "layers": [{"mediaType": BUNDLE_MEDIA_TYPE, "size": len(bundle.data), "digest": bundle.digest}],
        "annotations": go_map(
            {"dev.sigstore.bundle.content": "dsse-envelope", BUNDLE_PREDICATE_TYPE_ANNOTATION: predicate_type}
        ),
        "subject": {"mediaType": subject["mediaType"], "size": subject["size"], "digest": subject["digest"]},
        "artifactType": BUNDLE_MEDIA_TYPE,
    }
    return marshal(manifest)


def referrers_tag(image_digest: str) -> str:
    """The OCI referrers tag schema's fallback tag: `sha256-<hex>`."""
    return check_image_digest(image_digest).replace(":", "-", 1)


def updated_referrers_index(
    existing: Optional[bytes], referrer: Mapping[str, Any], origin: str
) -> Optional[bytes]:
    """go-containerregistry's commitSubjectReferrers: the fallback index with `referrer` added (sorted by
    digest), or None when it is listed already."""
    if existing is None:
        index: Dict[str, Any] = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": []}
    else:
        try:
            index = json.loads(existing.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            raise OciBuildError(f"{origin}: the referrers tag does not hold JSON") from None
        if (
            not isinstance(index, dict)
            or index.get("schemaVersion") != 2
            or index.get("mediaType") != OCI_INDEX
        ):
            raise OciBuildError(
                f"{origin}: the referrers tag is not an OCI image index; cannot list the signature"
            )
        if any(d.get("digest") == referrer["digest"] for d in index.get("manifests") or []):
            return None
    manifests = list(index.get("manifests") or []) + [dict(referrer)]
    manifests.sort(key=lambda d: str(d.get("digest")))
    out: Dict[str, Any] = {
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": [go_descriptor(d) for d in manifests],
    }
    for name in ("annotations", "subject", "artifactType"):
        if index.get(name):
            out[name] = go_map(index[name]) if name == "annotations" else index[name]
    return marshal(out)


@dataclass(frozen=True)
class Statement:
    payload: bytes
    subject_digests: List[str]
    predicate_type: str


def parse_bundle(data: bytes, key: PublicKey, origin: str) -> Statement:
    """The statement a bundle's DSSE envelope carries, once its signature verifies with `key`.

    Raises OciBuildError naming what is wrong (not a bundle, no envelope, bad signature)."""
    try:
        bundle = json.loads(data.decode("utf-8"))
        envelope = bundle["dsseEnvelope"]
    except (UnicodeDecodeError, ValueError, KeyError, TypeError):
        raise OciBuildError(f"{origin}: not a Sigstore bundle with a DSSE envelope") from None
    if not str(bundle.get("mediaType", "")).startswith("application/vnd.dev.sigstore.bundle"):
        raise OciBuildError(f"{origin}: not a Sigstore bundle (mediaType {bundle.get('mediaType')!r})")
    return open_dsse_envelope(envelope, key, origin)


def open_dsse_envelope(envelope: Any, key: PublicKey, origin: str) -> Statement:
    """The in-toto statement of a DSSE envelope (parsed JSON), once one of its signatures over the
    PAE verifies with `key`; OciBuildError naming what is wrong otherwise."""
    try:
        payload = base64.b64decode(envelope["payload"], validate=True)
        payload_type = envelope["payloadType"]
        signatures = [base64.b64decode(s["sig"], validate=True) for s in envelope["signatures"]]
    except (ValueError, KeyError, TypeError):
        raise OciBuildError(f"{origin}: not a DSSE envelope (payload, payloadType, signatures)") from None
    if payload_type != IN_TOTO_PAYLOAD_TYPE:
        raise OciBuildError(
            f"{origin}: the DSSE payload type is {payload_type!r}, not {IN_TOTO_PAYLOAD_TYPE!r}"
        )
    if not any(key.verifies(sig, pae(payload_type, payload)) for sig in signatures):
        raise OciBuildError(
            f"{origin}: the DSSE signature does not verify with {key.origin} (wrong key, or the statement was altered)"
        )
    try:
        statement = json.loads(payload.decode("utf-8"))
        subjects = [
            f"{alg}:{value}" for s in statement["subject"] for alg, value in sorted(s["digest"].items())
        ]
        predicate_type = statement["predicateType"]
    except (UnicodeDecodeError, ValueError, KeyError, TypeError, AttributeError):
        raise OciBuildError(f"{origin}: the signed DSSE payload is not an in-toto statement") from None
    return Statement(payload, subjects, predicate_type)
