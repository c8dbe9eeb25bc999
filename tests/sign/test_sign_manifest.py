"""cosign's signature image: the manifest and config bytes, appending, and duplicate detection."""

from __future__ import annotations

import base64
import hashlib
import json

from ocibuild.sign.cosign_manifest import (
    SignatureLayer,
    has_equivalent_signature,
    parse_signature_manifest,
    signature_image,
    signature_tag,
)
from ocibuild.sign.simplesigning import simple_signing_payload

IMAGE = "sha256:" + "ab" * 32


def _digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def test_signature_tag() -> None:
    assert signature_tag(IMAGE) == "sha256-" + "ab" * 32 + ".sig"


def test_first_signature_image_bytes() -> None:
    payload = simple_signing_payload("127.0.0.1:5000/images/static", IMAGE)
    signature = b"0E\x02 fixed-signature-bytes"
    image = signature_image(SignatureLayer(payload, signature))
    # go-containerregistry's empty image config after mutate.Append of one layer: zero times, one
    # empty history entry and the payload's sha256 as diff_id (v1.ConfigFile field order).
    config = (
        '{"architecture":"","created":"0001-01-01T00:00:00Z","history":[{"created":"0001-01-01T00:00:00Z"}],'
        f'"os":"","rootfs":{{"type":"layers","diff_ids":["{_digest(payload)}"]}},"config":{{}}}}'
    ).encode()
    assert image.config == config
    manifest = (
        '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":'
        f'"application/vnd.oci.image.config.v1+json","size":{len(config)},"digest":"{_digest(config)}"}},'
        '"layers":[{"mediaType":"application/vnd.dev.cosign.simplesigning.v1+json",'
        f'"size":{len(payload)},"digest":"{_digest(payload)}","annotations":'
        f'{{"dev.cosignproject.cosign/signature":"{base64.b64encode(signature).decode()}"}}}}]}}'
    ).encode()
    assert image.manifest == manifest
    assert image.new_blobs == {_digest(config): config, _digest(payload): payload}


def test_appending_keeps_other_signers_layers_and_is_deterministic(make_key) -> None:
    payload = simple_signing_payload("127.0.0.1:5000/app", IMAGE)
    alice, bob = make_key("alice"), make_key("bob")
    first = signature_image(SignatureLayer(payload, alice.sign(payload)))
    bob_layer = SignatureLayer(payload, bob.sign(payload))
    second = signature_image(bob_layer, (first.manifest, first.config))
    assert second.manifest == signature_image(bob_layer, (first.manifest, first.config)).manifest
    manifest = json.loads(second.manifest)
    old = json.loads(first.manifest)
    assert manifest["layers"][0] == old["layers"][0]
    assert (
        manifest["layers"][1]["annotations"]["dev.cosignproject.cosign/signature"]
        == bob_layer.base64_signature
    )
    config = json.loads(second.config)
    assert config["rootfs"]["diff_ids"] == [_digest(payload)] * 2
    assert config["history"] == [{"created": "0001-01-01T00:00:00Z"}] * 2
    assert manifest["config"]["digest"] == _digest(second.config)
    # what Go would re-marshal: the same bytes as building both layers from scratch in order
    assert second.config == json.dumps(config, separators=(",", ":")).encode()


def test_foreign_fields_are_dropped_like_go_does() -> None:
    payload = simple_signing_payload("r/app", IMAGE)
    first = signature_image(SignatureLayer(payload, b"sig1"))
    manifest = json.loads(first.manifest)
    manifest["x-unknown"] = 1
    manifest["annotations"] = {"z": "1", "a": "2"}
    config = json.loads(first.config)
    config["created"] = "2024-01-01T00:00:00Z"
    second = signature_image(
        SignatureLayer(payload, b"sig2"), (json.dumps(manifest).encode(), json.dumps(config).encode())
    )
    text = second.manifest.decode()
    assert "x-unknown" not in text and '"annotations":{"a":"2","z":"1"}}' in text
    assert json.loads(second.config)["created"] == "2024-01-01T00:00:00Z"


def test_duplicate_detection_is_by_payload_and_key(make_key) -> None:
    payload = simple_signing_payload("127.0.0.1:5000/app", IMAGE)
    alice, bob = make_key("alice"), make_key("bob")
    manifest = parse_signature_manifest(
        signature_image(SignatureLayer(payload, alice.sign(payload))).manifest, "m"
    )
    # ECDSA signatures differ each time; the same payload signed by the same key is still a duplicate.
    assert has_equivalent_signature(manifest, SignatureLayer(payload, alice.sign(payload)), alice.public_key)
    assert not has_equivalent_signature(manifest, SignatureLayer(payload, bob.sign(payload)), bob.public_key)
    other = simple_signing_payload("127.0.0.1:5000/other", IMAGE)
    assert not has_equivalent_signature(manifest, SignatureLayer(other, alice.sign(other)), alice.public_key)
