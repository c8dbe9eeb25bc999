"""`python -m ocibuild oci-verify` against a real registry: exit codes and the one-line output."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import List

import pytest
from ocibuild.common.digests import sha256_digest
from ocibuild.registry.client import OCI_INDEX, OCI_MANIFEST, RegistryClient
from ocibuild.sign.attach import sign_image
from testutil.servers import Registry

REPO = "cli/app"


def _push_manifest(client: RegistryClient, label: str) -> str:
    config = json.dumps(
        {"architecture": label, "os": "linux", "rootfs": {"type": "layers", "diff_ids": []}}
    ).encode()
    client.upload_blob(REPO, sha256_digest(config), len(config), config)
    manifest = json.dumps({"schemaVersion": 2, "mediaType": OCI_MANIFEST, "layers": [], "config": {
        "mediaType": "application/vnd.oci.image.config.v1+json", "digest": sha256_digest(config), "size": len(config)}}).encode()  # fmt: skip
    return client.put_manifest(REPO, sha256_digest(manifest), manifest, OCI_MANIFEST)


@pytest.fixture(scope="module")
def signed_index(registry: Registry, tmp_path_factory: pytest.TempPathFactory, make_key):
    """A two-platform index, each manifest and the index signed (simple and bundle) as publishing does."""
    client = RegistryClient(registry.address, insecure=True)
    children = [_push_manifest(client, arch) for arch in ("amd64", "arm64")]
    index = json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [
        {"mediaType": OCI_MANIFEST, "digest": d, "size": 1} for d in children]}).encode()  # fmt: skip
    index_digest = client.put_manifest(REPO, sha256_digest(index), index, OCI_INDEX)
    key = make_key("cosign.key")
    for digest in [index_digest, *children]:
        for fmt in ("simple", "bundle"):
            sign_image(client, REPO, digest, f"{registry.address}/{REPO}", key, fmt)
    keys = tmp_path_factory.mktemp("keys")
    (keys / "cosign.pub").write_bytes(key.public_key.pem())
    (keys / "other.pub").write_bytes(make_key().public_key.pem())
    return registry, index_digest, children, keys


def _verify(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    return subprocess.run(
        [sys.executable, "-m", "ocibuild", "oci-verify", *args], capture_output=True, text=True, env=env
    )


def _lines(result: subprocess.CompletedProcess) -> List[str]:
    assert result.returncode == 0, result.stderr
    return result.stdout.splitlines()


@pytest.mark.parametrize("fmt", ["simple", "bundle"])
def test_verify_reference_and_recursive(signed_index, fmt: str) -> None:
    registry, index_digest, children, keys = signed_index
    name = f"{registry.address}/{REPO}"
    common = [
        "--key",
        str(keys / "cosign.pub"),
        "--insecure-registry",
        registry.address,
        "--signature-format",
        fmt,
    ]
    assert _lines(_verify("--reference", f"{name}@{index_digest}", *common)) == [
        f"verified {name}@{index_digest} (1 signature)"
    ]
    assert _lines(_verify("--reference", f"{name}@{index_digest}", "--recursive", *common)) == [
        f"verified {name}@{d} (1 signature)" for d in [index_digest, *children]
    ]


def test_verify_a_layout_pushed_to_a_repository(signed_index, tmp_path: Path) -> None:
    registry, index_digest, _children, keys = signed_index
    (tmp_path / "oci-layout").write_text('{"imageLayoutVersion":"1.0.0"}')
    (tmp_path / "index.json").write_text(json.dumps(
        {"schemaVersion": 2, "manifests": [{"mediaType": OCI_INDEX, "digest": index_digest, "size": 1}]}))  # fmt: skip
    result = _verify("--layout", str(tmp_path), "--repository", f"{registry.address}/{REPO}",
                     "--key", str(keys / "cosign.pub"), "--insecure-registry", registry.address)  # fmt: skip
    assert _lines(result) == [f"verified {registry.address}/{REPO}@{index_digest} (1 signature)"]


def test_verify_failures_are_one_line(signed_index) -> None:
    registry, index_digest, _children, keys = signed_index
    name = f"{registry.address}/{REPO}"
    wrong = _verify(
        "--reference",
        f"{name}@{index_digest}",
        "--key",
        str(keys / "other.pub"),
        "--insecure-registry",
        registry.address,
    )
    assert wrong.returncode == 1 and wrong.stdout == ""
    assert wrong.stderr.startswith(
        f"error: {name}@{index_digest}: none of the 1 simple-signing signatures verifies with"
    )
    assert len(wrong.stderr.strip().splitlines()) == 1
    missing = "sha256:" + "0" * 64
    result = _verify(
        "--reference",
        f"{name}@{missing}",
        "--key",
        str(keys / "cosign.pub"),
        "--insecure-registry",
        registry.address,
    )
    assert result.returncode == 1 and "no cosign signature" in result.stderr
    tag = _verify("--reference", f"{name}:latest", "--key", str(keys / "cosign.pub"))
    assert tag.returncode == 1 and "verify a digest" in tag.stderr
