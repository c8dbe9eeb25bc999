"""Fixtures for the signing tests: keys, the independent checkers (openssl, npm @sigstore/verify), a registry."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Callable, Iterator

import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from ocibuild.sign.keys import SigningKey
from testutil.provision import npm_installed
from testutil.servers import Registry, docker_registry, require_tool

SIGSTORE_VERIFY_VERSION = "3.1.0"  # the newest release whose engines accept Node 20, Debian 12's

# Verifies a Sigstore bundle offline with one public key and an empty trusted root (no logs, no CAs,
# no timestamp authorities; all thresholds 0), then checks the in-toto subject is the image digest.
# With --any-hint the key is offered whatever hint the bundle names, so a wrong key fails on the
# signature itself rather than on the hint lookup.
_VERIFY_JS = r"""
const fs = require("fs");
const crypto = require("crypto");
const { bundleFromJSON } = require("@sigstore/bundle");
const { TrustedRoot, PublicKeyDetails } = require("@sigstore/protobuf-specs");
const { Verifier, toSignedEntity, toTrustMaterial } = require("@sigstore/verify");

const [bundlePath, keyPath, subjectHex, mode] = process.argv.slice(2);
const bundle = bundleFromJSON(JSON.parse(fs.readFileSync(bundlePath, "utf8")));
const keyObject = crypto.createPublicKey(fs.readFileSync(keyPath));
const der = keyObject.export({ type: "spki", format: "der" });
const hint = crypto.createHash("sha256").update(der).digest("base64");
const root = TrustedRoot.fromJSON({
  mediaType: "application/vnd.dev.sigstore.trustedroot+json;version=0.1",
  tlogs: [], certificateAuthorities: [], ctlogs: [], timestampAuthorities: [],
});
const keys = mode === "--any-hint"
  ? () => ({ publicKey: keyObject, validFor: () => true })
  : { [hint]: { rawBytes: der, keyDetails: PublicKeyDetails.PKIX_ECDSA_P256_SHA_256 } };
const verifier = new Verifier(toTrustMaterial(root, keys), { tlogThreshold: 0, ctlogThreshold: 0, timestampThreshold: 0 });
try {
  verifier.verify(toSignedEntity(bundle));
} catch (e) {
  console.log(`FAILED ${e.code || ""} ${e.message}`);
  process.exit(1);
}
const statement = JSON.parse(Buffer.from(bundle.content.dsseEnvelope.payload).toString("utf8"));
const subjects = statement.subject.map((s) => s.digest.sha256);
if (!subjects.includes(subjectHex)) {
  console.log(`FAILED subject ${subjects.join(",")} is not ${subjectHex}`);
  process.exit(1);
}
console.log(`VERIFIED ${statement.predicateType}`);
"""


def new_key(origin: str = "test key") -> SigningKey:
    return SigningKey(ec.generate_private_key(ec.SECP256R1()), origin)


@pytest.fixture
def signing_key() -> SigningKey:
    return new_key("signer.key")


@pytest.fixture(scope="session")
def make_key() -> Callable[..., SigningKey]:
    """A factory of fresh P-256 keys (named for messages)."""
    return new_key


@pytest.fixture
def openssl_verify(tmp_path: Path) -> Callable[[bytes, bytes, bytes], bool]:
    """`openssl dgst -sha256 -verify pub.pem -signature sig.der data`: whether openssl says Verified OK."""
    openssl = require_tool("openssl")
    counter = iter(range(1_000_000))

    def check(public_pem: bytes, signature_der: bytes, data: bytes) -> bool:
        n = next(counter)
        pub, sig, payload = (tmp_path / f"openssl-{n}.{ext}" for ext in ("pub.pem", "sig.der", "data"))
        pub.write_bytes(public_pem)
        sig.write_bytes(signature_der)
        payload.write_bytes(data)
        result = subprocess.run(
            [openssl, "dgst", "-sha256", "-verify", str(pub), "-signature", str(sig), str(payload)],
            capture_output=True,
            text=True,
        )
        ok = result.returncode == 0 and result.stdout.strip() == "Verified OK"
        assert ok or "Verification failure" in result.stdout + result.stderr, result.stdout + result.stderr
        return ok

    return check


def _sigstore_js() -> Path:
    """npm @sigstore/verify, installed once per machine under the tests' cache (outside the repository)."""
    require_tool("npm")
    prefix = npm_installed(
        f"@sigstore/verify@{SIGSTORE_VERIFY_VERSION}", f"sigstore-verify-{SIGSTORE_VERIFY_VERSION}"
    )
    (prefix / "verify-bundle.js").write_text(_VERIFY_JS)
    return prefix


@pytest.fixture(scope="session")
def sigstore_js() -> Path:
    return _sigstore_js()


@pytest.fixture
def sigstore_verify(sigstore_js: Path, tmp_path: Path) -> Callable[..., subprocess.CompletedProcess]:
    """Run @sigstore/verify on (bundle bytes, public key PEM, image digest[, any_hint]); stdout says VERIFIED or FAILED."""
    node = require_tool("node")
    counter = iter(range(1_000_000))

    def run(
        bundle: bytes, public_pem: bytes, image_digest: str, any_hint: bool = False
    ) -> subprocess.CompletedProcess:
        n = next(counter)
        bundle_file, key_file = tmp_path / f"bundle-{n}.json", tmp_path / f"key-{n}.pem"
        bundle_file.write_bytes(bundle)
        key_file.write_bytes(public_pem)
        argv = [
            node,
            str(sigstore_js / "verify-bundle.js"),
            str(bundle_file),
            str(key_file),
            image_digest.split(":", 1)[1],
        ]
        env = {**os.environ, "NODE_PATH": str(sigstore_js / "node_modules"), "NODE_NO_WARNINGS": "1"}
        return subprocess.run(
            argv + (["--any-hint"] if any_hint else []), capture_output=True, text=True, env=env
        )

    return run


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    with docker_registry(tmp_path_factory.mktemp("registry")) as running:
        yield running
