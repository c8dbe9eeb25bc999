"""SBOM attestations against Debian's docker-registry: the static image built by the core (with its
SBOM), pushed with `python -m ocibuild push --sign-key --attach-sbom`, then read back: cosign's `.att`
image byte layout, the DSSE envelope and in-toto statement, openssl over the PAE, our verifier
(library and `oci-verify --attestations`), a tampered SBOM refused, the bundle referrer checked by
@sigstore/verify; attaching again changes nothing."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any, Dict, List

import pytest
from cryptography.hazmat.primitives import serialization
from ocibuild.__main__ import main as ocibuild_main
from ocibuild.common.digests import sha256_digest
from ocibuild.errors import OciBuildError
from ocibuild.registry.client import OCI_MANIFEST, RegistryClient
from ocibuild.sign.attest import (
    DSSE_MEDIA_TYPE,
    SPDX_PREDICATE_TYPE,
    attestation_layer,
    attestation_tag,
    sbom_statement,
)
from ocibuild.sign.bundle import BUNDLE_MEDIA_TYPE, dsse_envelope, pae
from ocibuild.sign.cosign_manifest import signature_image
from ocibuild.sign.gojson import marshal
from ocibuild.sign.keys import SigningKey
from ocibuild.sign.referrers import list_referrers
from ocibuild.sign.verify import verify_attestations
from testutil.sbom_images import build_static
from testutil.servers import Registry


@pytest.fixture(scope="module")
def image(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The core's output folder of images/static: layout/, sbom/x86_64.spdx.json, image.json."""
    work = tmp_path_factory.mktemp("static")
    build_static(work)
    return work / "static"


@pytest.fixture(scope="module")
def key_files(tmp_path_factory: pytest.TempPathFactory, make_key) -> Dict[str, Any]:
    key: SigningKey = make_key("cosign.key")
    folder = tmp_path_factory.mktemp("keys")
    pem = key.key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    (folder / "signer.pem").write_bytes(pem)
    (folder / "cosign.pub").write_bytes(key.public_key.pem())
    other: SigningKey = make_key("other.pub")
    (folder / "other.pub").write_bytes(other.public_key.pem())
    return {"key": key, "other": other, "dir": folder}


def _push(registry: Registry, image: Path, repo: str, key_dir: Path, fmt: str, capsys) -> List[str]:
    code = ocibuild_main(
        [
            "push",
            f"--layout={image / 'layout'}",
            f"--repository={registry.address}/{repo}",
            "--tag=latest",
            f"--insecure-registry={registry.address}",
            f"--sign-key={key_dir / 'signer.pem'}",
            f"--signature-format={fmt}",
            f"--attach-sbom={image / 'sbom'}",
        ]
    )
    assert code == 0
    return capsys.readouterr().err.splitlines()


def _manifest_digest(image: Path) -> str:
    metadata = json.loads((image / "image.json").read_text())
    return metadata["digest"]


def _verify_cli(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    return subprocess.run(
        [sys.executable, "-m", "ocibuild", "oci-verify", *args], capture_output=True, text=True, env=env
    )


def test_simple_attestation_is_cosigns_att_image(registry, image, key_files, openssl_verify, capsys) -> None:
    repo = "attest/simple"
    lines = _push(registry, image, repo, key_files["dir"], "simple", capsys)
    digest = _manifest_digest(image)
    name = f"{registry.address}/{repo}"
    assert f"attested the SBOM of {digest} -> {name}:{attestation_tag(digest)}" in " ".join(lines)
    client = RegistryClient(registry.address, insecure=True)
    found = client.get_manifest(repo, attestation_tag(digest))
    assert found is not None and found.media_type == OCI_MANIFEST
    manifest = json.loads(found.data)
    (layer,) = manifest["layers"]
    # cosign's static.NewAttestation layer: DSSE media type, empty signature annotation, predicateType
    assert layer["mediaType"] == DSSE_MEDIA_TYPE
    assert list(layer["annotations"].items()) == [
        ("dev.cosignproject.cosign/signature", ""),
        ("predicateType", SPDX_PREDICATE_TYPE),
    ]
    # the manifest and config are go-containerregistry's bytes, as for a `.sig` image
    envelope_bytes = client.get_blob(repo, layer["digest"])
    expected = signature_image(attestation_layer(envelope_bytes))
    assert found.data == expected.manifest
    assert client.get_blob(repo, manifest["config"]["digest"]) == expected.config

    envelope = json.loads(envelope_bytes)
    assert list(envelope) == ["payload", "payloadType", "signatures"]
    assert envelope["payloadType"] == "application/vnd.in-toto+json"
    payload = base64.b64decode(envelope["payload"])
    statement = json.loads(payload)
    assert list(statement) == ["_type", "subject", "predicateType", "predicate"]
    assert statement["_type"] == "https://in-toto.io/Statement/v1"
    assert statement["subject"] == [{"name": name, "digest": {"sha256": digest.split(":")[1]}}]
    assert statement["predicateType"] == SPDX_PREDICATE_TYPE
    assert statement["predicate"] == json.loads((image / "sbom" / "x86_64.spdx.json").read_bytes())

    # openssl, independently, over the DSSE pre-authentication encoding
    (signature,) = [base64.b64decode(s["sig"]) for s in envelope["signatures"]]
    public_pem = (key_files["dir"] / "cosign.pub").read_bytes()
    signed = pae("application/vnd.in-toto+json", payload)
    assert signed.startswith(b"DSSEv1 28 application/vnd.in-toto+json %d {" % len(payload))
    assert openssl_verify(public_pem, signature, signed)
    assert not openssl_verify(public_pem, signature, signed.replace(b"alpine-keys", b"alpine-keyz"))

    key = key_files["key"]
    sbom = (image / "sbom" / "x86_64.spdx.json").read_bytes()
    assert len(verify_attestations(client, repo, digest, key.public_key, "simple", sbom)) == 1

    # attaching again: already there, nothing appended
    lines = _push(registry, image, repo, key_files["dir"], "simple", capsys)
    assert f"already attested the SBOM of {digest}" in " ".join(lines)
    again = client.get_manifest(repo, attestation_tag(digest))
    assert again is not None and again.data == found.data


def test_oci_verify_checks_attestations(registry, image, key_files, capsys) -> None:
    repo = "attest/cli"
    _push(registry, image, repo, key_files["dir"], "simple", capsys)
    digest = _manifest_digest(image)
    name = f"{registry.address}/{repo}"
    common = ["--reference", f"{name}@{digest}", "--insecure-registry", registry.address, "--attestations"]
    ok = _verify_cli(
        *common, "--key", str(key_files["dir"] / "cosign.pub"), "--sbom-dir", str(image / "sbom")
    )
    assert ok.returncode == 0, ok.stderr
    assert ok.stdout.splitlines() == [f"verified {name}@{digest} (1 signature, 1 SBOM attestation)"]
    wrong = _verify_cli(*common, "--key", str(key_files["dir"] / "other.pub"))
    assert wrong.returncode == 1
    assert "does not verify with" in wrong.stderr and len(wrong.stderr.strip().splitlines()) == 1


def test_tampered_sbom_fails(registry, image, key_files, capsys, tmp_path) -> None:
    repo = "attest/tampered"
    _push(registry, image, repo, key_files["dir"], "simple", capsys)
    digest = _manifest_digest(image)
    client = RegistryClient(registry.address, insecure=True)
    key = key_files["key"]
    tag = attestation_tag(digest)
    found = client.get_manifest(repo, tag)
    assert found is not None
    (layer,) = json.loads(found.data)["layers"]
    envelope = json.loads(client.get_blob(repo, layer["digest"]))
    # someone swaps a package version in the attested SBOM and keeps the signature
    payload = base64.b64decode(envelope["payload"])
    forged = payload.replace(b'"versionInfo":"3.19.1-r0"', b'"versionInfo":"3.19.9-r0"', 1)
    assert forged != payload
    envelope["payload"] = base64.b64encode(forged).decode()
    image_bytes = signature_image(attestation_layer(marshal(envelope)))
    for blob_digest, blob in image_bytes.new_blobs.items():
        client.upload_blob(repo, blob_digest, len(blob), blob)
    client.put_manifest(repo, tag, image_bytes.manifest, OCI_MANIFEST)
    with pytest.raises(OciBuildError, match="the DSSE signature does not verify"):
        verify_attestations(client, repo, digest, key.public_key)

    # a correctly signed attestation of a different SBOM than this build's fails the --sbom-dir check
    other = json.loads((image / "sbom" / "x86_64.spdx.json").read_bytes())
    other["name"] = "something else"
    statement = sbom_statement(f"{registry.address}/{repo}", digest, json.dumps(other).encode())
    honest = signature_image(attestation_layer(marshal(dsse_envelope(key, statement))))
    for blob_digest, blob in honest.new_blobs.items():
        client.upload_blob(repo, blob_digest, len(blob), blob)
    client.put_manifest(repo, tag, honest.manifest, OCI_MANIFEST)
    assert len(verify_attestations(client, repo, digest, key.public_key)) == 1
    sbom = (image / "sbom" / "x86_64.spdx.json").read_bytes()
    with pytest.raises(OciBuildError, match="not the one this build wrote"):
        verify_attestations(client, repo, digest, key.public_key, "simple", sbom)
    # and an attestation about another image does not count for this one
    statement = sbom_statement(f"{registry.address}/{repo}", "sha256:" + "0" * 64, sbom)
    elsewhere = signature_image(attestation_layer(marshal(dsse_envelope(key, statement))))
    for blob_digest, blob in elsewhere.new_blobs.items():
        client.upload_blob(repo, blob_digest, len(blob), blob)
    client.put_manifest(repo, tag, elsewhere.manifest, OCI_MANIFEST)
    with pytest.raises(OciBuildError, match="not this image"):
        verify_attestations(client, repo, digest, key.public_key)


def test_bundle_attestation_is_a_referrer(registry, image, key_files, sigstore_verify, capsys) -> None:
    repo = "attest/bundle"
    _push(registry, image, repo, key_files["dir"], "bundle", capsys)
    digest = _manifest_digest(image)
    client = RegistryClient(registry.address, insecure=True)
    key = key_files["key"]
    referrers = [
        d for d in list_referrers(client, repo, digest) if d.get("artifactType") == BUNDLE_MEDIA_TYPE
    ]
    manifests = [json.loads(client.get_manifest(repo, d["digest"]).data) for d in referrers]  # type: ignore[union-attr]
    (sbom_referrer,) = [
        m for m in manifests if m["annotations"]["dev.sigstore.bundle.predicateType"] == SPDX_PREDICATE_TYPE
    ]
    assert sbom_referrer["subject"]["digest"] == digest
    assert sbom_referrer["annotations"]["dev.sigstore.bundle.content"] == "dsse-envelope"
    bundle = client.get_blob(repo, sbom_referrer["layers"][0]["digest"])
    assert sha256_digest(bundle) == sbom_referrer["layers"][0]["digest"]
    result = sigstore_verify(bundle, key.public_key.pem(), digest)
    assert result.stdout.strip() == f"VERIFIED {SPDX_PREDICATE_TYPE}", result.stdout + result.stderr
    sbom = (image / "sbom" / "x86_64.spdx.json").read_bytes()
    assert len(verify_attestations(client, repo, digest, key.public_key, "bundle", sbom)) == 1
    with pytest.raises(OciBuildError, match="does not verify"):
        verify_attestations(client, repo, digest, key_files["other"].public_key, "bundle")
    # pushing again adds no second attestation referrer
    _push(registry, image, repo, key_files["dir"], "bundle", capsys)
    assert len(list_referrers(client, repo, digest)) == len(referrers)
