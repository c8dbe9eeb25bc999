"""Simulated nights of build-support/nightly against Debian's docker-registry (through the fault
proxy, which counts every request) and two versions of a fixture mirror: a signed index and
real-format packages made with testutil.apkbuild (a tzdata and a CA bundle of real certificates).

Night 1 publishes (latest and the dated tag, signed, SBOM attested), and the rebuild in a clean
checkout gives the same digest; night 2 on the same mirror writes nothing; night 3 (newer tzdata,
one CA root removed and one added) as a dry run writes nothing, then fails with the registry going
down mid-push, leaving `latest` at night 1's image, and its rerun publishes a new digest with the
changelog naming the changes; a night with the mirror gone fails and writes nothing.
"""

from __future__ import annotations

import datetime
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import List, Sequence

# The script runs these in this test's interpreter (NIGHTLY_PYTHON): imported so that Pants puts
# their requirements (cryptography, pynacl, requests, ...) in the test's environment.
import ocibuild.cli.push  # noqa: F401
import ocibuild.refresh.pipeline  # noqa: F401
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from ocibuild.registry.client import RegistryClient
from testutil.apkbuild import TEST_KEY, build_apk, reg_file, symlink, write_keys, write_repository
from testutil.checkout import make_checkout, stop_pantsd
from testutil.fault_proxy import Fault, FaultProxy, fault_proxy
from testutil.servers import docker_registry

UPSTREAM = "https://packages.example.invalid/nightly/"
SPEC = f"""\
contents:
  repositories:
    - {UPSTREAM}main
  keyring:
    - {TEST_KEY.name}
  packages:
    - tzdata
    - ca-certificates-bundle
archs:
  - x86_64
"""
BUILD = """\
apk_layer(name="packages", lockfile="apko.lock.json")
oci_image(name="base", layers=[":packages"], repository="nightly/base")
"""
TZIF = b"TZif2" + b"\0" * 40
NIGHT_1 = 1733011200  # 2024-12-01 UTC
NIGHT_3 = NIGHT_1 + 2 * 86400
WRITES = ("PUT", "POST", "PATCH", "DELETE")


def ca_root(common_name: str) -> x509.Certificate:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    start = datetime.datetime(2024, 1, 1)
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(start + datetime.timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )


def write_mirror(
    folder: Path,
    tz_version: str,
    zones: Sequence[str],
    ca_version: str,
    roots: List[x509.Certificate],
    builddate: int,
) -> None:
    bundle = b"".join(cert.public_bytes(serialization.Encoding.PEM) for cert in roots)
    tz_files = [reg_file(f"usr/share/zoneinfo/{zone}", TZIF + zone.encode()) for zone in zones]
    tz_files.append(symlink("usr/share/zoneinfo/UCT", "UTC"))
    packages = [
        build_apk("tzdata", tz_version, files=tz_files, builddate=builddate),
        build_apk(
            "ca-certificates-bundle",
            ca_version,
            files=[reg_file("etc/ssl/certs/ca-certificates.crt", bundle)],
            builddate=builddate,
        ),
    ]
    write_repository(folder / "main" / "x86_64", packages)


def configure(checkout: Path, mirror: Path) -> None:
    """The checkout's one APK resolve is the fixture image's, served by the fixture mirror."""
    image_dir = checkout / "nightly"
    image_dir.mkdir()
    (image_dir / "apko.yaml").write_text(SPEC)
    (image_dir / "BUILD").write_text(BUILD)
    write_keys(image_dir, TEST_KEY)
    toml = (checkout / "pants.toml").read_text()
    toml = re.sub(r"(?m)^resolves = \{ static = .*$", 'resolves = { nightly = "nightly/apko.yaml" }', toml)
    toml = re.sub(r"(?m)^mirrors = \{.*$", f'mirrors = {{ "{UPSTREAM}" = ["file://{mirror}/"] }}', toml)
    assert 'nightly = "nightly/apko.yaml"' in toml and str(mirror) in toml
    (checkout / "pants.toml").write_text(toml)
    # A git work tree, as CI's checkout is: the reproducibility check copies the files git lists.
    git = ["git", "-C", str(checkout), "-c", "user.name=nightly", "-c", "user.email=nightly@example.invalid"]
    for args in (["init", "-q"], ["add", "-A"], ["commit", "-q", "-m", "checkout"]):
        subprocess.run([*git, *args], check=True, capture_output=True)


def nightly(
    checkout: Path, proxy: FaultProxy, key: Path, epoch: int, *extra: str
) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PANTS_")}
    env.update(NIGHTLY_PYTHON=sys.executable, SOURCE_DATE_EPOCH=str(epoch))
    argv = ["build-support/nightly", f"--registry={proxy.address}", f"--insecure-registry={proxy.address}"]
    argv += [f"--sign-key={key}", "--pants-arg=--no-dynamic-ui", *extra, "nightly::"]
    return subprocess.run(argv, cwd=checkout, env=env, capture_output=True, text=True, timeout=1800)


def commit_locks(checkout: Path) -> None:
    """What follows a reviewed night: the refreshed lock committed (the changelog's next baseline)."""
    git = ["git", "-C", str(checkout), "-c", "user.name=nightly", "-c", "user.email=nightly@example.invalid"]
    subprocess.run([*git, "add", "nightly/apko.lock.json"], check=True, capture_output=True)
    subprocess.run([*git, "commit", "-q", "-m", "refreshed lock"], check=True, capture_output=True)


def ok(result: subprocess.CompletedProcess) -> str:
    assert result.returncode == 0, (result.stdout + result.stderr)[-6000:]
    return result.stdout


def writes(proxy: FaultProxy) -> int:
    return sum(proxy.count(method) for method in WRITES)


def built_digest(checkout: Path) -> str:
    return json.loads((checkout / "dist/nightly/base/image.json").read_text())["digest"]


def test_three_nights(tmp_path: Path) -> None:
    old_root, kept_root, new_root = ca_root("Old Root CA"), ca_root("Kept Root CA"), ca_root("New Root CA")
    mirror = tmp_path / "mirror"
    write_mirror(
        tmp_path / "mirror-1",
        "2024a-r0",
        ["UTC", "Europe/Paris"],
        "20240101-r0",
        [old_root, kept_root],
        NIGHT_1,
    )
    write_mirror(
        tmp_path / "mirror-2",
        "2024b-r0",
        ["UTC", "Europe/Paris", "America/Ciudad_Juarez"],
        "20240301-r0",
        [kept_root, new_root],
        NIGHT_3,
    )
    # This mirror still serves night 1's files, as one that never prunes does (the index lists only
    # the new builds): the changelog compares their contents.
    for old_file in (tmp_path / "mirror-1/main/x86_64").glob("*.apk"):
        shutil.copy2(old_file, tmp_path / "mirror-2/main/x86_64" / old_file.name)
    mirror.symlink_to(tmp_path / "mirror-1")
    checkout = make_checkout(tmp_path)
    configure(checkout, mirror)
    key = tmp_path / "cosign.key"
    key.write_bytes(
        ec.generate_private_key(ec.SECP256R1()).private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )

    (tmp_path / "registry").mkdir()
    try:
        with docker_registry(tmp_path / "registry") as registry, fault_proxy(registry.address) as proxy:
            run_nights(tmp_path, checkout, mirror, key, proxy, registry.address, (old_root, new_root))
    finally:
        stop_pantsd(checkout)


def run_nights(
    tmp_path: Path, checkout: Path, mirror: Path, key: Path, proxy: FaultProxy, registry: str, roots: tuple
) -> None:
    old_root, new_root = roots
    client = RegistryClient(registry, insecure=True)

    def tag(name: str):
        return client.manifest_digest("nightly/base", name)

    # Night 1: the first lock of the resolve; everything is added, published, reproducible.
    out = ok(nightly(checkout, proxy, key, NIGHT_1, "--reproduce"))
    night1 = built_digest(checkout)
    assert "added tzdata 2024a-r0" in out and "added ca-certificates-bundle 20240101-r0" in out
    assert f"publish {proxy.address}/nightly/base:latest {night1} (was nothing), tags 20241201, latest" in out
    assert "published: 1 image push(es), tagged 20241201" in out
    assert tag("latest") == tag("20241201") == night1
    assert tag(f"sha256-{night1.split(':')[1]}.sig") is not None  # the cosign signature
    assert tag(f"sha256-{night1.split(':')[1]}.att") is not None  # the SBOM attestation
    assert json.loads((checkout / "dist/nightly/result.json").read_text()) == {"status": "published"}
    commit_locks(checkout)

    # Night 2, same mirror: only reads.
    proxy.reset()
    out = ok(nightly(checkout, proxy, key, NIGHT_1 + 86400))
    assert "resolve nightly: no package changed" in out
    assert out.rstrip().endswith("nothing pushed") and "unchanged: every registry" in out
    assert writes(proxy) == 0 and proxy.count("HEAD") >= 1
    assert tag("latest") == night1 and tag("20241202") is None

    # Night 3: newer tzdata and CA bundle; the registry goes down at the first manifest upload.
    mirror.unlink()
    mirror.symlink_to(tmp_path / "mirror-2")
    # A dry run first: the changelog and the plan, exit 0, nothing written.
    proxy.reset()
    out = ok(nightly(checkout, proxy, key, NIGHT_3, "--dry-run"))
    assert "upgraded tzdata 2024a-r0 → 2024b-r0" in out
    assert f"publish {proxy.address}/nightly/base:latest" in out and f"(was {night1})" in out
    assert out.rstrip().endswith("dry run: 1 of 1 image push(es) planned, nothing pushed")
    assert writes(proxy) == 0 and tag("latest") == night1
    assert json.loads((checkout / "dist/nightly/result.json").read_text()) == {"status": "dry-run"}
    proxy.reset()
    proxy.inject(Fault("down", method="PUT", path_contains="/manifests/"))
    failed = nightly(checkout, proxy, key, NIGHT_3)
    assert failed.returncode == 1, failed.stdout + failed.stderr
    assert "before any tag moved: run the nightly again to finish" in failed.stderr
    proxy.reset()
    assert tag("latest") == night1 and tag("20241203") is None

    out = ok(nightly(checkout, proxy, key, NIGHT_3))
    night3 = built_digest(checkout)
    assert night3 != night1
    assert "upgraded tzdata 2024a-r0 → 2024b-r0" in out
    assert "tzdata release 2024a → 2024b" in out and "zone added: America/Ciudad_Juarez" in out
    assert "upgraded ca-certificates-bundle 20240101-r0 → 20240301-r0" in out
    fingerprint = new_root.fingerprint(hashes.SHA256()).hex(":").upper()
    assert f"added: CN=New Root CA (SHA-256 {fingerprint})" in out
    assert "removed: CN=Old Root CA (SHA-256 " in out and "Kept Root CA" not in out
    markdown = (checkout / "dist/nightly/changelog.md").read_text()
    assert "### tzdata: release 2024a → 2024b" in markdown and "- added: CN=New Root CA" in markdown
    assert tag("latest") == tag("20241203") == night3
    assert tag("20241201") == night1 and client.manifest_digest("nightly/base", night1) == night1

    # A night with the mirror gone: fails naming the re-lock, writes nothing.
    mirror.unlink()
    proxy.reset()
    failed = nightly(checkout, proxy, key, NIGHT_3 + 86400)
    assert failed.returncode == 1
    assert "generate-lockfiles" in failed.stderr and "failed" in failed.stdout
    assert writes(proxy) == 0 and tag("latest") == night3
