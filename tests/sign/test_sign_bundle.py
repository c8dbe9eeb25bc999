"""Sigstore bundles: verified by npm @sigstore/verify and by openssl over the DSSE PAE; our parser's checks."""

from __future__ import annotations

import base64
import json

import pytest
from ocibuild.errors import OciBuildError
from ocibuild.sign.bundle import (
    BUNDLE_MEDIA_TYPE,
    pae,
    parse_bundle,
    referrer_manifest,
    referrers_tag,
    sign_bundle,
    updated_referrers_index,
)

IMAGE = "sha256:" + "cd" * 32
OTHER = "sha256:" + "ef" * 32


def _tampered(bundle: bytes, statement: bytes) -> bytes:
    data = json.loads(bundle)
    data["dsseEnvelope"]["payload"] = base64.b64encode(statement).decode()
    return json.dumps(data).encode()


def test_bundle_layout(make_key) -> None:
    key = make_key()
    bundle = json.loads(sign_bundle(key, IMAGE).data)
    assert list(bundle) == ["mediaType", "verificationMaterial", "dsseEnvelope"]
    assert bundle["mediaType"] == BUNDLE_MEDIA_TYPE
    assert bundle["verificationMaterial"] == {"publicKey": {"hint": key.public_key.hint()}}
    envelope = bundle["dsseEnvelope"]
    assert envelope["payloadType"] == "application/vnd.in-toto+json" and len(envelope["signatures"]) == 1
    assert json.loads(base64.b64decode(envelope["payload"])) == {
        "_type": "https://in-toto.io/Statement/v1",
        "subject": [{"digest": {"sha256": "cd" * 32}, "annotations": {}}],
        "predicateType": "https://sigstore.dev/cosign/sign/v1",
        "predicate": {},
    }


def test_dsse_signature_verifies_with_openssl_over_the_pae(openssl_verify, make_key) -> None:
    key = make_key()
    envelope = json.loads(sign_bundle(key, IMAGE).data)["dsseEnvelope"]
    statement = base64.b64decode(envelope["payload"])
    signature = base64.b64decode(envelope["signatures"][0]["sig"])
    assert pae("application/vnd.in-toto+json", statement).startswith(
        b"DSSEv1 28 application/vnd.in-toto+json %d {" % len(statement)
    )
    assert openssl_verify(key.public_key.pem(), signature, pae(envelope["payloadType"], statement))
    assert not openssl_verify(key.public_key.pem(), signature, statement)  # the PAE, not the bare payload


def test_sigstore_js_verifies_our_bundle(sigstore_verify, make_key) -> None:
    key = make_key()
    bundle = sign_bundle(key, IMAGE).data
    result = sigstore_verify(bundle, key.public_key.pem(), IMAGE)
    assert result.returncode == 0 and "VERIFIED https://sigstore.dev/cosign/sign/v1" in result.stdout, (
        result.stdout + result.stderr
    )
    assert "is not" in sigstore_verify(bundle, key.public_key.pem(), OTHER).stdout


def test_sigstore_js_rejects_wrong_key_and_tampered_statement(sigstore_verify, make_key) -> None:
    key, other = make_key(), make_key()
    bundle = sign_bundle(key, IMAGE).data
    wrong = sigstore_verify(bundle, other.public_key.pem(), IMAGE, any_hint=True)
    assert wrong.returncode == 1 and "FAILED" in wrong.stdout, wrong.stdout + wrong.stderr
    statement = base64.b64decode(json.loads(bundle)["dsseEnvelope"]["payload"]).replace(
        b"cd" * 32, b"ef" * 32
    )
    tampered = sigstore_verify(_tampered(bundle, statement), key.public_key.pem(), OTHER)
    assert tampered.returncode == 1 and "FAILED" in tampered.stdout, tampered.stdout + tampered.stderr


def test_our_parser_checks_the_same(make_key) -> None:
    key, other = make_key("cosign.pub"), make_key("other.pub")
    bundle = sign_bundle(key, IMAGE).data
    statement = parse_bundle(bundle, key.public_key, "b")
    assert (
        statement.subject_digests == [IMAGE]
        and statement.predicate_type == "https://sigstore.dev/cosign/sign/v1"
    )
    with pytest.raises(OciBuildError, match="does not verify with other.pub"):
        parse_bundle(bundle, other.public_key, "b")
    tampered = _tampered(bundle, statement.payload.replace(b"cd" * 32, b"ef" * 32))
    with pytest.raises(OciBuildError, match="wrong key, or the statement was altered"):
        parse_bundle(tampered, key.public_key, "b")
    with pytest.raises(OciBuildError, match="not a Sigstore bundle"):
        parse_bundle(b"{}", key.public_key, "b")


def test_referrer_manifest_and_fallback_index(make_key) -> None:
    bundle = sign_bundle(make_key(), IMAGE)
    subject = {"mediaType": "application/vnd.oci.image.manifest.v1+json", "size": 123, "digest": IMAGE}
    manifest = json.loads(referrer_manifest(bundle, subject))
    assert manifest["subject"] == subject and manifest["artifactType"] == BUNDLE_MEDIA_TYPE
    assert manifest["config"] == {
        "mediaType": "application/vnd.oci.empty.v1+json",
        "size": 2,
        "digest": "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a",
        "artifactType": BUNDLE_MEDIA_TYPE,
    }
    assert manifest["layers"] == [
        {"mediaType": BUNDLE_MEDIA_TYPE, "size": len(bundle.data), "digest": bundle.digest}
    ]
    assert "org.opencontainers.image.created" not in manifest["annotations"]  # reproducible: no wall clock
    assert referrers_tag(IMAGE) == "sha256-" + "cd" * 32

    def entry(digest: str) -> dict:
        return {
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "size": 9,
            "digest": digest,
            "artifactType": BUNDLE_MEDIA_TYPE,
        }

    first = updated_referrers_index(None, entry(OTHER), "tag")
    assert (
        first
        == (
            '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[{"mediaType":'
            f'"application/vnd.oci.image.manifest.v1+json","size":9,"digest":"{OTHER}","artifactType":"{BUNDLE_MEDIA_TYPE}"}}]}}'
        ).encode()
    )
    both = updated_referrers_index(first, entry(IMAGE), "tag")
    assert both is not None
    assert [d["digest"] for d in json.loads(both)["manifests"]] == [IMAGE, OTHER]  # sorted by digest
    assert updated_referrers_index(both, entry(OTHER), "tag") is None  # already listed
    with pytest.raises(OciBuildError, match="not an OCI image index"):
        updated_referrers_index(b'{"schemaVersion":2}', entry(IMAGE), "tag")
