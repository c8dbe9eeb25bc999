"""`python -m ocibuild push --sign-key`: every pushed manifest signed before any tag moves.

The signatures are checked by the signing helper's verifier (ocibuild.sign.verify) against the
real registry; the order of writes is read from the counting proxy.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from ocibuild.registry.client import RegistryClient
from ocibuild.registry.push import read_layout
from ocibuild.sign.keys import load_public_key
from ocibuild.sign.verify import verify_image
from testutil.fault_proxy import fault_proxy
from testutil.paths import repo_root
from testutil.registry_images import build_layout, noise
from testutil.servers import docker_registry


@pytest.mark.parametrize("signature_format", ["simple", "bundle"])
def test_signed_push_signs_index_and_platform_manifests_before_the_tag(
    tmp_path: Path, signature_format: str
) -> None:
    layout, digest = build_layout(
        tmp_path / "img", "images/signed", [{"bin/x": noise(20, 2_000)}], architectures=("x86_64", "aarch64")
    )
    key = ec.generate_private_key(ec.SECP256R1())
    (tmp_path / "key.pem").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(b"key-password"),
        )
    )
    (tmp_path / "key.pub").write_bytes(
        key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(repo_root() / "src/python"), os.environ.get("PYTHONPATH", "")]),
        "HOME": str(tmp_path),
        "SIGNING_PASSWORD": "key-password",
    }
    (tmp_path / "reg").mkdir()
    with docker_registry(tmp_path / "reg") as registry, fault_proxy(registry.address) as proxy:
        argv = [sys.executable, "-m", "ocibuild", "push", f"--layout={layout}"]
        argv += [
            f"--repository={proxy.address}/images/signed",
            "--tag=v1",
            f"--insecure-registry={proxy.address}",
        ]
        argv += [f"--sign-key={tmp_path / 'key.pem'}", "--sign-key-password-env=SIGNING_PASSWORD"]
        argv += [f"--signature-format={signature_format}"]
        result = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=120)
        assert result.returncode == 0, result.stderr
        assert result.stdout.splitlines() == [f"pushed {proxy.address}/images/signed:v1@{digest}"]
        assert "key-password" not in result.stdout + result.stderr

        manifest_puts = [
            s.path.rsplit("/", 1)[1] for s in proxy.seen if s.method == "PUT" and "/manifests/" in s.path
        ]
        assert manifest_puts[-1] == "v1"  # the tag last, after every signature
        assert all(
            not p.startswith("sha256-") for p in manifest_puts[:3]
        )  # image manifests before signatures

        client = RegistryClient(registry.address, insecure=True)
        public = load_public_key(tmp_path / "key.pub")
        for manifest in read_layout(layout).manifests:
            lines = verify_image(
                client,
                "images/signed",
                manifest.descriptor.digest,
                public,
                signature_format,
                docker_reference=f"{proxy.address}/images/signed",
            )
            assert lines


def test_unset_password_variable_is_named(tmp_path: Path) -> None:
    layout, _ = build_layout(tmp_path / "img", "images/x", [{"x": b"x"}])
    env = {**os.environ, "PYTHONPATH": str(repo_root() / "src/python"), "HOME": str(tmp_path)}
    env.pop("NO_SUCH_PASSWORD_VAR", None)
    key = ec.generate_private_key(ec.SECP256R1())
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(b"pw"),
    )
    (tmp_path / "key.pem").write_bytes(pem)
    argv = [
        sys.executable,
        "-m",
        "ocibuild",
        "push",
        f"--layout={layout}",
        "--repository=localhost:1/images/x",
    ]
    argv += [f"--sign-key={tmp_path / 'key.pem'}", "--sign-key-password-env=NO_SUCH_PASSWORD_VAR"]
    result = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=60)
    assert result.returncode == 1
    last = result.stderr.splitlines()[-1]
    assert last.startswith(f"error: {tmp_path / 'key.pem'}: ") and last.endswith(
        "(NO_SUCH_PASSWORD_VAR is not set)"
    )
