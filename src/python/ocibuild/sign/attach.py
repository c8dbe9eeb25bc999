"""Sign an image that is in a registry, the way `cosign sign --key` does: push the signature next to it.

"simple" (cosign's default before 3.0): the simple-signing payload, appended as a layer to the
signature image under the tag `sha256-<hex>.sig` (other signers' layers stay). "bundle" (cosign 3):
a Sigstore bundle pushed as an OCI 1.1 referrer, listed under the `sha256-<hex>` tag when the
registry has no referrers API. Signing again with the same key is a no-op in both formats.
"""

from __future__ import annotations

from typing import Any, Callable, Mapping

from ocibuild.common.digests import sha256_digest
from ocibuild.errors import OciBuildError
from ocibuild.registry.client import DOCKER_MANIFEST, OCI_MANIFEST, Manifest, RegistryClient
from ocibuild.sign.bundle import (
    BUNDLE_MEDIA_TYPE,
    COSIGN_SIGN_PREDICATE_TYPE,
    EMPTY_BLOB,
    OCI_INDEX,
    SignedBundle,
    Statement,
    parse_bundle,
    referrer_manifest,
    referrers_tag,
    sign_bundle,
    statement_for,
    updated_referrers_index,
)
from ocibuild.sign.cosign_manifest import (
    SignatureLayer,
    has_equivalent_signature,
    parse_signature_manifest,
    signature_image,
    signature_tag,
)
from ocibuild.sign.keys import SigningKey
from ocibuild.sign.referrers import list_referrers
from ocibuild.sign.simplesigning import check_image_digest, simple_signing_payload

__all__ = [
    "sign_image",
    "append_to_tag_image",
    "bundle_referrer_carries",
    "layer_carries",
    "push_bundle_referrer",
    "SIGNATURE_FORMATS",
]

SIGNATURE_FORMATS = ("simple", "bundle")


def append_to_tag_image(
    client: RegistryClient,
    repository: str,
    tag: str,
    kind: str,
    carries_ours: Callable[[Mapping[str, Any]], bool],
    layer: Callable[[], SignatureLayer],
) -> bool:
    """Append `layer()` to cosign's `kind` image under `tag` (`.sig`, `.att`), other signers' layers
    kept; False, and nothing pushed, when `carries_ours(existing manifest)` says ours is there already."""
    where = f"{client.registry}/{repository}:{tag}"
    existing = client.get_manifest(repository, tag, accept=(OCI_MANIFEST, DOCKER_MANIFEST))
    base = None
    media_type = OCI_MANIFEST
    if existing is not None:
        manifest = parse_signature_manifest(existing.data, where)
        if carries_ours(manifest):
            return False
        config_digest = (manifest.get("config") or {}).get("digest")
        if not isinstance(config_digest, str):
            raise OciBuildError(f"{where}: the {kind} manifest has no config digest; cannot append to it")
        base = (existing.data, client.get_blob(repository, config_digest))
        media_type = str(manifest.get("mediaType") or existing.media_type or OCI_MANIFEST)
    image = signature_image(layer(), base, where)
    for digest, blob in sorted(image.new_blobs.items()):
        client.upload_blob(repository, digest, len(blob), blob)
    client.put_manifest(repository, tag, image.manifest, media_type)
    return True


def _sign_simple(
    client: RegistryClient, repository: str, image_digest: str, docker_reference: str, key: SigningKey
) -> str:
    payload = simple_signing_payload(docker_reference, image_digest)
    layer = SignatureLayer(payload, key.sign(payload))
    tag = signature_tag(image_digest)
    where = f"{client.registry}/{repository}:{tag}"
    if not append_to_tag_image(
        client,
        repository,
        tag,
        "signature",
        lambda manifest: has_equivalent_signature(manifest, layer, key.public_key),
        lambda: layer,
    ):
        return f"already signed {docker_reference}@{image_digest} ({where})"
    return f"signed {docker_reference}@{image_digest} -> {where}"


def bundle_referrer_carries(
    client: RegistryClient, repository: str, image_digest: str, payload: bytes, key: SigningKey
) -> bool:
    """Whether a bundle referrer of `image_digest` already carries `payload` signed by this key."""
    for desc in list_referrers(client, repository, image_digest):
        if desc.get("artifactType") != BUNDLE_MEDIA_TYPE or not isinstance(desc.get("digest"), str):
            continue
        referrer = client.get_manifest(repository, desc["digest"], accept=(OCI_MANIFEST,))
        if referrer is None:
            continue
        manifest = parse_signature_manifest(referrer.data, desc["digest"])
        if layer_carries(
            client,
            repository,
            manifest,
            BUNDLE_MEDIA_TYPE,
            lambda blob: parse_bundle(blob, key.public_key, "bundle"),
            payload,
        ):
            return True
    return False


def layer_carries(
    client: RegistryClient,
    repository: str,
    manifest: Mapping[str, Any],
    media_type: str,
    open_layer: Callable[[bytes], Statement],
    payload: bytes,
) -> bool:
    """Whether a `media_type` layer of `manifest` opens (its signature verifying) to `payload`; layers
    that do not open are someone else's, and skipped."""
    for layer in manifest.get("layers", []):
        if layer.get("mediaType") != media_type:
            continue
        try:
            found = open_layer(client.get_blob(repository, str(layer.get("digest"))))
        except OciBuildError:
            continue
        if found.payload == payload:
            return True
    return False


def _sign_bundle(
    client: RegistryClient, repository: str, image_digest: str, docker_reference: str, key: SigningKey
) -> str:
    image = client.get_manifest(repository, image_digest)
    if image is None:
        raise OciBuildError(
            f"{docker_reference}@{image_digest}: no such manifest in the registry; push it before signing"
        )
    if bundle_referrer_carries(client, repository, image_digest, statement_for(image_digest), key):
        return f"already signed {docker_reference}@{image_digest} (a Sigstore bundle referrer)"
    where = push_bundle_referrer(client, repository, image, sign_bundle(key, image_digest))
    return f"signed {docker_reference}@{image_digest} -> {where}"


def push_bundle_referrer(
    client: RegistryClient,
    repository: str,
    image: Manifest,
    bundle: SignedBundle,
    predicate_type: str = COSIGN_SIGN_PREDICATE_TYPE,
) -> str:
    """Push `bundle` as an OCI 1.1 referrer of `image` (listed under the referrers tag when the registry
    has no referrers API); where it went, for the log line."""
    image_digest = image.digest
    manifest = referrer_manifest(
        bundle,
        {"mediaType": image.media_type, "size": len(image.data), "digest": image.digest},
        predicate_type,
    )
    client.upload_blob(repository, sha256_digest(EMPTY_BLOB), len(EMPTY_BLOB), EMPTY_BLOB)
    client.upload_blob(repository, bundle.digest, len(bundle.data), bundle.data)
    referrer_digest = client.put_manifest(repository, sha256_digest(manifest), manifest, OCI_MANIFEST)
    where = f"{client.registry}/{repository}@{referrer_digest}"
    if client.referrers(repository, image_digest) is None:
        # No referrers API: keep the referrers tag schema's index current, as go-containerregistry does.
        tag = referrers_tag(image_digest)
        existing = client.get_manifest(repository, tag, accept=(OCI_INDEX,))
        index = updated_referrers_index(
            existing.data if existing else None,
            {
                "mediaType": OCI_MANIFEST,
                "size": len(manifest),
                "digest": referrer_digest,
                "artifactType": BUNDLE_MEDIA_TYPE,
            },
            f"{client.registry}/{repository}:{tag}",
        )
        if index is not None:
            client.put_manifest(repository, tag, index, OCI_INDEX)
        where += f" (listed under :{tag})"
    return where


def sign_image(
    client: RegistryClient,
    repository: str,
    image_digest: str,
    docker_reference: str,
    key: SigningKey,
    signature_format: str = "simple",
) -> str:
    """Sign the manifest `image_digest` in `repository` and push the signature; a one-line description.

    `docker_reference` is the identity signed (cosign's REG/REPO, e.g. "registry.example/team/app")."""
    check_image_digest(image_digest)
    if signature_format == "simple":
        return _sign_simple(client, repository, image_digest, docker_reference, key)
    if signature_format == "bundle":
        return _sign_bundle(client, repository, image_digest, docker_reference, key)
    raise OciBuildError(
        f"unknown signature format {signature_format!r}; use one of {', '.join(SIGNATURE_FORMATS)}"
    )
