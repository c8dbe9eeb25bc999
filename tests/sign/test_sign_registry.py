"""sign_image and verify_image against Debian's docker-registry (distribution 2.8, no referrers API)."""

from __future__ import annotations

import base64
import json
from typing import Callable

import pytest
from ocibuild.common.digests import sha256_digest
from ocibuild.errors import OciBuildError
from ocibuild.registry.client import OCI_INDEX, OCI_MANIFEST, RegistryClient
from ocibuild.sign.attach import sign_image
from ocibuild.sign.cosign_manifest import SIGNATURE_ANNOTATION, signature_tag
from ocibuild.sign.verify import verify_image
from testutil.servers import Registry

REPO = "sign/app"


@pytest.fixture(scope="module")
def client(registry: Registry) -> RegistryClient:
    return RegistryClient(registry.address, insecure=True)


@pytest.fixture
def push_image(client: RegistryClient) -> Callable[[str], str]:
    """Push a small image (unique per label) to REPO; its manifest digest."""

    def push(label: str) -> str:
        config = json.dumps({"architecture": "amd64", "os": "linux", "config": {"Labels": {"t": label}},
                             "rootfs": {"type": "layers", "diff_ids": []}}).encode()  # fmt: skip
        client.upload_blob(REPO, sha256_digest(config), len(config), config)
        manifest = json.dumps(
            {"schemaVersion": 2, "mediaType": OCI_MANIFEST, "layers": [],
             "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": sha256_digest(config), "size": len(config)}}
        ).encode()  # fmt: skip
        return client.put_manifest(REPO, sha256_digest(manifest), manifest, OCI_MANIFEST)

    return push


def _ref(client: RegistryClient) -> str:
    return f"{client.registry}/{REPO}"


def _sig_manifest(client: RegistryClient, digest: str) -> dict:
    found = client.get_manifest(REPO, signature_tag(digest))
    assert found is not None
    return json.loads(found.data)


def test_simple_signature_round_trip(client, push_image, signing_key, openssl_verify) -> None:
    digest = push_image("simple")
    line = sign_image(client, REPO, digest, _ref(client), signing_key)
    assert line == f"signed {_ref(client)}@{digest} -> {_ref(client)}:{signature_tag(digest)}"
    assert len(verify_image(client, REPO, digest, signing_key.public_key, docker_reference=_ref(client))) == 1
    # independently: openssl over the payload blob with the annotation's signature
    (layer,) = _sig_manifest(client, digest)["layers"]
    payload = client.get_blob(REPO, layer["digest"])
    assert json.loads(payload)["critical"]["image"]["docker-manifest-digest"] == digest
    assert openssl_verify(
        signing_key.public_key.pem(), base64.b64decode(layer["annotations"][SIGNATURE_ANNOTATION]), payload
    )
    # signing again with the same key changes nothing
    before = client.get_manifest(REPO, signature_tag(digest))
    assert sign_image(client, REPO, digest, _ref(client), signing_key).startswith("already signed")
    assert client.get_manifest(REPO, signature_tag(digest)) == before


def test_a_second_signer_is_appended(client, push_image, make_key) -> None:
    digest = push_image("two signers")
    alice, bob, carol = make_key("alice.pub"), make_key("bob.pub"), make_key("carol.pub")
    sign_image(client, REPO, digest, _ref(client), alice)
    sign_image(client, REPO, digest, _ref(client), bob)
    layers = _sig_manifest(client, digest)["layers"]
    assert len(layers) == 2
    assert len(verify_image(client, REPO, digest, alice.public_key)) == 1
    assert len(verify_image(client, REPO, digest, bob.public_key)) == 1
    with pytest.raises(
        OciBuildError, match="none of the 2 simple-signing signatures verifies with carol.pub.*wrong key"
    ):
        verify_image(client, REPO, digest, carol.public_key)


def test_missing_signature(client, push_image, signing_key) -> None:
    digest = push_image("unsigned")
    with pytest.raises(
        OciBuildError, match=f"@{digest}: no cosign signature \\(no tag {signature_tag(digest)}\\)"
    ):
        verify_image(client, REPO, digest, signing_key.public_key)


def test_tampered_payload(client, push_image, signing_key) -> None:
    digest = push_image("tampered")
    sign_image(client, REPO, digest, _ref(client), signing_key)
    manifest = _sig_manifest(client, digest)
    layer = manifest["layers"][0]
    forged = client.get_blob(REPO, layer["digest"]).replace(b"sign/app", b"sign/evil")
    client.upload_blob(REPO, sha256_digest(forged), len(forged), forged)
    layer.update(digest=sha256_digest(forged), size=len(forged))
    client.put_manifest(REPO, signature_tag(digest), json.dumps(manifest).encode(), OCI_MANIFEST)
    with pytest.raises(
        OciBuildError, match="does not verify with the key \\(wrong key, or the payload was altered\\)"
    ):
        verify_image(client, REPO, digest, signing_key.public_key)


def test_a_signature_for_another_digest(client, push_image, signing_key) -> None:
    signed, victim = push_image("signed"), push_image("victim")
    sign_image(client, REPO, signed, _ref(client), signing_key)
    copied = client.get_manifest(REPO, signature_tag(signed))
    client.put_manifest(REPO, signature_tag(victim), copied.data, OCI_MANIFEST)
    with pytest.raises(OciBuildError, match=f"signed for {signed}, not this image"):
        verify_image(client, REPO, victim, signing_key.public_key)


def test_a_signature_for_another_repository(client, push_image, signing_key) -> None:
    digest = push_image("other repo")
    sign_image(client, REPO, digest, f"{client.registry}/somewhere/else", signing_key)
    assert verify_image(client, REPO, digest, signing_key.public_key)  # no identity asked: cosign's default
    with pytest.raises(
        OciBuildError, match=f"signed for {client.registry}/somewhere/else, not {_ref(client)}"
    ):
        verify_image(client, REPO, digest, signing_key.public_key, docker_reference=_ref(client))


def test_bundle_referrer_with_the_tag_fallback(client, push_image, make_key, sigstore_verify) -> None:
    digest = push_image("bundle")
    alice, bob = make_key("alice.pub"), make_key("bob.pub")
    with pytest.raises(OciBuildError, match="no Sigstore bundle signature"):
        verify_image(client, REPO, digest, alice.public_key, "bundle")
    line = sign_image(client, REPO, digest, _ref(client), alice, "bundle")
    fallback_tag = "sha256-" + digest.split(":")[1]
    assert line.startswith(f"signed {_ref(client)}@{digest} -> {_ref(client)}@sha256:") and line.endswith(
        f"(listed under :{fallback_tag})"
    )
    assert client.referrers(REPO, digest) is None  # distribution 2.8: no referrers API, hence the tag
    index = client.get_manifest(REPO, fallback_tag, accept=(OCI_INDEX,))
    (entry,) = json.loads(index.data)["manifests"]
    assert entry["artifactType"] == "application/vnd.dev.sigstore.bundle.v0.3+json"
    referrer = json.loads(client.get_manifest(REPO, entry["digest"]).data)
    assert referrer["subject"]["digest"] == digest
    bundle = client.get_blob(REPO, referrer["layers"][0]["digest"])
    result = sigstore_verify(bundle, alice.public_key.pem(), digest)
    assert result.returncode == 0, result.stdout + result.stderr
    assert len(verify_image(client, REPO, digest, alice.public_key, "bundle")) == 1

    assert sign_image(client, REPO, digest, _ref(client), alice, "bundle").startswith("already signed")
    sign_image(client, REPO, digest, _ref(client), bob, "bundle")
    entries = json.loads(client.get_manifest(REPO, fallback_tag, accept=(OCI_INDEX,)).data)["manifests"]
    assert len(entries) == 2 and entries == sorted(entries, key=lambda d: d["digest"])
    assert len(verify_image(client, REPO, digest, bob.public_key, "bundle")) == 1
    with pytest.raises(OciBuildError, match="none of the 2 Sigstore bundles verifies with carol.pub"):
        verify_image(client, REPO, digest, make_key("carol.pub").public_key, "bundle")
    # the simple-signing tag is untouched by bundles
    with pytest.raises(OciBuildError, match="no cosign signature"):
        verify_image(client, REPO, digest, alice.public_key)
