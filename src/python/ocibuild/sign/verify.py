"""Check an image's signatures as `cosign verify --key cosign.pub --insecure-ignore-tlog` does.

A simple signature counts when its ECDSA signature over the payload verifies with the key, the payload
is a cosign simple-signing claim, its docker-manifest-digest is the image's digest and (when asked)
its docker-reference names the expected repository. A bundle counts when its DSSE signature over
the PAE verifies with the key and its in-toto statement's subject is the image digest, with cosign's
sign predicate type. At least one must count; otherwise the error says why each one did not.

`verify_attestations` checks SBOM attestations (ocibuild.sign.attest) as `cosign verify-attestation
--key --type spdxjson` does: the DSSE signature over the PAE verifies with the key, the statement's
subject is the image digest and its predicate type SPDX's; optionally, its predicate is the SBOM the
build wrote (so a registry copy that differs from this checkout's SBOM fails too).
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple, TypeVar

from ocibuild.errors import OciBuildError
from ocibuild.registry.client import DOCKER_MANIFEST, OCI_MANIFEST, RegistryClient, short_digest
from ocibuild.sign.attest import (
    DSSE_MEDIA_TYPE,
    PREDICATE_TYPE_ANNOTATION,
    SPDX_PREDICATE_TYPE,
    attestation_tag,
    open_envelope,
)
from ocibuild.sign.bundle import (
    BUNDLE_MEDIA_TYPE,
    BUNDLE_PREDICATE_TYPE_ANNOTATION,
    COSIGN_SIGN_PREDICATE_TYPE,
    Statement,
    parse_bundle,
)
from ocibuild.sign.cosign_manifest import (
    SIGNATURE_ANNOTATION,
    SIMPLE_SIGNING_MEDIA_TYPE,
    parse_signature_manifest,
    signature_tag,
)
from ocibuild.sign.keys import PublicKey
from ocibuild.sign.referrers import list_referrers
from ocibuild.sign.simplesigning import check_image_digest, parse_simple_signing_payload

__all__ = ["verify_image", "verify_attestations"]

_T = TypeVar("_T")


def _names_repository(claimed: str, expected: str) -> bool:
    """cosign's docker-reference is REG/REPO, or REG/REPO:TAG / @DIGEST when signed with an identity."""
    return claimed == expected or claimed.startswith(expected + ":") or claimed.startswith(expected + "@")


def _check_simple_layer(
    client: RegistryClient,
    repository: str,
    image_digest: str,
    layer: Dict[str, Any],
    key: PublicKey,
    docker_reference: Optional[str],
) -> str:
    """A description of the verified signature in `layer`, or OciBuildError saying why it does not count."""
    digest = str(layer.get("digest"))
    where = f"signature layer {short_digest(digest)}"
    try:
        signature = base64.b64decode(
            (layer.get("annotations") or {}).get(SIGNATURE_ANNOTATION, ""), validate=True
        )
    except (binascii.Error, TypeError):
        raise OciBuildError(f"{where}: the {SIGNATURE_ANNOTATION} annotation is not base64") from None
    if not signature:
        raise OciBuildError(f"{where}: no {SIGNATURE_ANNOTATION} annotation")
    payload = client.get_blob(repository, digest)
    if not key.verifies(signature, payload):
        raise OciBuildError(
            f"{where}: the signature does not verify with the key (wrong key, or the payload was altered)"
        )
    claim = parse_simple_signing_payload(payload, where)
    if claim.manifest_digest != image_digest:
        raise OciBuildError(f"{where}: signed for {claim.manifest_digest}, not this image")
    if docker_reference is not None and not _names_repository(claim.docker_reference, docker_reference):
        raise OciBuildError(f"{where}: signed for {claim.docker_reference}, not {docker_reference}")
    return f"simple-signing {short_digest(digest)} for {claim.docker_reference}@{claim.manifest_digest}"


def _verify_simple(
    client: RegistryClient,
    repository: str,
    image_digest: str,
    key: PublicKey,
    docker_reference: Optional[str],
) -> List[str]:
    tag = signature_tag(image_digest)
    where = f"{client.registry}/{repository}@{image_digest}"
    found = client.get_manifest(repository, tag, accept=(OCI_MANIFEST, DOCKER_MANIFEST))
    if found is None:
        raise OciBuildError(
            f"{where}: no cosign signature (no tag {tag}); sign the image, or check the reference"
        )
    manifest = parse_signature_manifest(found.data, f"{client.registry}/{repository}:{tag}")
    layers = [d for d in manifest["layers"] if d.get("mediaType") == SIMPLE_SIGNING_MEDIA_TYPE]
    return _each_verified(
        layers,
        lambda layer: _check_simple_layer(client, repository, image_digest, layer, key, docker_reference),
        where,
        key,
        "simple-signing signature",
    )


def _check_bundle_referrer(
    client: RegistryClient, repository: str, image_digest: str, desc: Dict[str, Any], key: PublicKey
) -> str:
    digest = str(desc.get("digest"))
    where = f"bundle referrer {short_digest(digest)}"
    found = client.get_manifest(repository, digest, accept=(OCI_MANIFEST,))
    if found is None:
        raise OciBuildError(f"{where}: listed, but the registry has no such manifest")
    manifest = parse_signature_manifest(found.data, where)
    statement = _referrer_statement(client, repository, image_digest, manifest, key, where)
    if statement.predicate_type != COSIGN_SIGN_PREDICATE_TYPE:
        raise OciBuildError(f"{where}: predicate type {statement.predicate_type!r} is not a cosign signature")
    return f"Sigstore bundle {short_digest(digest)} for {image_digest}"


def _referrer_statement(
    client: RegistryClient,
    repository: str,
    image_digest: str,
    manifest: Dict[str, Any],
    key: PublicKey,
    where: str,
) -> Statement:
    """The statement of a bundle referrer's one bundle layer, once the referrer's subject and the
    statement's are this image and the DSSE signature verifies with `key`."""
    if (manifest.get("subject") or {}).get("digest") != image_digest:
        raise OciBuildError(f"{where}: its subject is not this image")
    bundles = [d for d in manifest["layers"] if d.get("mediaType") == BUNDLE_MEDIA_TYPE]
    if len(bundles) != 1:
        raise OciBuildError(f"{where}: expected one {BUNDLE_MEDIA_TYPE} layer, found {len(bundles)}")
    statement = parse_bundle(client.get_blob(repository, str(bundles[0].get("digest"))), key, where)
    _check_subject(statement, image_digest, where)
    return statement


def _check_subject(statement: Statement, image_digest: str, where: str) -> None:
    if image_digest not in statement.subject_digests:
        raise OciBuildError(
            f"{where}: the statement is about {', '.join(statement.subject_digests) or 'nothing'}, not this image"
        )


def _verify_bundle(client: RegistryClient, repository: str, image_digest: str, key: PublicKey) -> List[str]:
    where = f"{client.registry}/{repository}@{image_digest}"
    referrers = [
        d
        for d in list_referrers(client, repository, image_digest)
        if d.get("artifactType") == BUNDLE_MEDIA_TYPE
    ]
    if not referrers:
        raise OciBuildError(
            f"{where}: no Sigstore bundle signature (no {BUNDLE_MEDIA_TYPE} referrer); sign the image with the "
            "bundle format, or check the reference"
        )
    return _each_verified(
        sorted(referrers, key=lambda d: str(d.get("digest"))),
        lambda desc: _check_bundle_referrer(client, repository, image_digest, desc, key),
        where,
        key,
        "Sigstore bundle",
    )


def _each_verified(
    candidates: Sequence[_T], check: Callable[[_T], str], where: str, key: PublicKey, what: str
) -> List[str]:
    """What `check` says of each candidate that passes; if none does, OciBuildError with why each failed."""
    verified, problems = [], []
    for candidate in candidates:
        try:
            verified.append(check(candidate))
        except OciBuildError as e:
            problems.append(str(e))
    if verified:
        return verified
    if not problems:
        raise OciBuildError(f"{where}: no {what} found in the signature manifest")
    raise OciBuildError(
        f"{where}: none of the {len(candidates)} {what}s verifies with {key.origin}: {'; '.join(problems)}"
    )


def verify_image(
    client: RegistryClient,
    repository: str,
    image_digest: str,
    public_key: PublicKey,
    signature_format: str = "simple",
    docker_reference: Optional[str] = None,
) -> List[str]:
    """One line per signature of `image_digest` that verifies with `public_key`; OciBuildError if none does
    (missing signature, wrong key, altered payload, a signature for another digest or repository)."""
    check_image_digest(image_digest)
    if signature_format == "simple":
        return _verify_simple(client, repository, image_digest, public_key, docker_reference)
    if signature_format == "bundle":
        return _verify_bundle(client, repository, image_digest, public_key)
    raise OciBuildError(f"unknown signature format {signature_format!r}; use simple or bundle")


def _check_sbom_statement(
    statement: Statement, image_digest: str, expected: Optional[bytes], where: str
) -> None:
    _check_subject(statement, image_digest, where)
    if statement.predicate_type != SPDX_PREDICATE_TYPE:
        raise OciBuildError(
            f"{where}: predicate type {statement.predicate_type!r} is not {SPDX_PREDICATE_TYPE}"
        )
    predicate = json.loads(statement.payload.decode("utf-8")).get("predicate")
    if not isinstance(predicate, dict) or not str(predicate.get("spdxVersion", "")).startswith("SPDX-"):
        raise OciBuildError(f"{where}: the predicate is not an SPDX document")
    if expected is not None and predicate != json.loads(expected.decode("utf-8")):
        raise OciBuildError(f"{where}: the attested SBOM is not the one this build wrote")


def _verify_attestations_simple(
    client: RegistryClient, repository: str, image_digest: str, key: PublicKey, expected: Optional[bytes]
) -> List[str]:
    tag = attestation_tag(image_digest)
    where = f"{client.registry}/{repository}@{image_digest}"
    found = client.get_manifest(repository, tag, accept=(OCI_MANIFEST, DOCKER_MANIFEST))
    if found is None:
        raise OciBuildError(f"{where}: no SBOM attestation (no tag {tag}); publish with a signing key")
    manifest = parse_signature_manifest(found.data, f"{client.registry}/{repository}:{tag}")
    layers = [
        d
        for d in manifest["layers"]
        if d.get("mediaType") == DSSE_MEDIA_TYPE
        and (d.get("annotations") or {}).get(PREDICATE_TYPE_ANNOTATION) == SPDX_PREDICATE_TYPE
    ]

    def check(layer: Dict[str, Any]) -> str:
        digest = str(layer.get("digest"))
        layer_where = f"attestation layer {short_digest(digest)}"
        statement = open_envelope(client.get_blob(repository, digest), key, layer_where)
        _check_sbom_statement(statement, image_digest, expected, layer_where)
        return f"SPDX attestation {short_digest(digest)} for {image_digest}"

    return _each_verified(layers, check, where, key, "SPDX attestation")


def _verify_attestations_bundle(
    client: RegistryClient, repository: str, image_digest: str, key: PublicKey, expected: Optional[bytes]
) -> List[str]:
    where = f"{client.registry}/{repository}@{image_digest}"
    spdx_referrers = []  # (digest, manifest): signatures and other attestations left out
    for desc in sorted(list_referrers(client, repository, image_digest), key=lambda d: str(d.get("digest"))):
        if desc.get("artifactType") != BUNDLE_MEDIA_TYPE:
            continue
        digest = str(desc.get("digest"))
        found = client.get_manifest(repository, digest, accept=(OCI_MANIFEST,))
        if found is None:
            continue
        manifest = parse_signature_manifest(found.data, f"bundle referrer {short_digest(digest)}")
        if (manifest.get("annotations") or {}).get(BUNDLE_PREDICATE_TYPE_ANNOTATION) == SPDX_PREDICATE_TYPE:
            spdx_referrers.append((digest, manifest))
    if not spdx_referrers:
        raise OciBuildError(
            f"{where}: no SBOM attestation (no Sigstore bundle referrer with predicate type {SPDX_PREDICATE_TYPE}); "
            "publish with a signing key"
        )

    def check(referrer: Tuple[str, Dict[str, Any]]) -> str:
        digest, manifest = referrer
        referrer_where = f"bundle referrer {short_digest(digest)}"
        statement = _referrer_statement(client, repository, image_digest, manifest, key, referrer_where)
        _check_sbom_statement(statement, image_digest, expected, referrer_where)
        return f"SPDX attestation bundle {short_digest(digest)} for {image_digest}"

    return _each_verified(spdx_referrers, check, where, key, "SPDX attestation")


def verify_attestations(
    client: RegistryClient,
    repository: str,
    image_digest: str,
    public_key: PublicKey,
    signature_format: str = "simple",
    expected_sbom: Optional[bytes] = None,
) -> List[str]:
    """One line per SPDX attestation of the manifest `image_digest` that verifies with `public_key`
    (and, given `expected_sbom`, attests that document); OciBuildError if none does."""
    check_image_digest(image_digest)
    if signature_format == "simple":
        return _verify_attestations_simple(client, repository, image_digest, public_key, expected_sbom)
    if signature_format == "bundle":
        return _verify_attestations_bundle(client, repository, image_digest, public_key, expected_sbom)
    raise OciBuildError(f"unknown signature format {signature_format!r}; use simple or bundle")
