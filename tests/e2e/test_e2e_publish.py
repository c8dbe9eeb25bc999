"""End to end: `./pants publish` to a real registry, signed, then pulled and run as users would.

A fresh checkout publishes `images/static` (root and nonroot) and the C hello to Debian's
docker-registry, configured the way a user would (`--oci-registries`, a signing key and its
password in the environment). Then: skopeo reads back the same digests, `pants oci-verify` checks
the signatures and SBOM attestations (and refuses another key), each image's `.att` attests the
SBOM `pants package` wrote, podman and dockerd pull and run the pushed hello, and the
seed's own flow works: a Dockerfile `FROM <registry>/images/static:latest` with a static hello
builds under `podman build` and dockerd's classic `docker build` and prints `Hello Distroless`.
"""

from __future__ import annotations

import hashlib
import json
import re
import subprocess
from pathlib import Path
from typing import Dict, Iterator, List

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from ocibuild.errors import OciBuildError
from ocibuild.registry.client import RegistryClient
from ocibuild.sign.keys import load_public_key
from ocibuild.sign.verify import verify_attestations
from testutil.checkout import make_checkout, run_pants
from testutil.servers import Podman, Registry, docker_registry, dockerd, podman, require_tool

IMAGES = ["images/static:static", "images/static:static-nonroot", "examples/hello-c:hello-c"]
PASSWORD = "correct horse battery staple"


def output(result: subprocess.CompletedProcess) -> str:
    return (result.stdout + result.stderr)[-6000:]


def write_key_pair(folder: Path, name: str) -> Path:
    key = ec.generate_private_key(ec.SECP256R1())
    private = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(PASSWORD.encode()),
    )
    public = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    (folder / f"{name}.key").write_bytes(private)
    (folder / f"{name}.pub").write_bytes(public)
    return folder / f"{name}.key"


@pytest.fixture(scope="module")
def workdir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("publish")


@pytest.fixture(scope="module")
def checkout(workdir: Path) -> Path:
    return make_checkout(workdir)


@pytest.fixture(scope="module")
def registry(workdir: Path) -> Iterator[Registry]:
    (workdir / "registry").mkdir()
    with docker_registry(workdir / "registry") as r:
        yield r


def pants_options(registry: Registry, key: Path) -> List[str]:
    registries = {"local": {"address": registry.address, "default": True, "insecure": True}}
    return [f"--oci-registries={registries!r}", f"--oci-signing-key={key}"]  # a Python literal


@pytest.fixture(scope="module")
def keys(workdir: Path) -> Path:
    folder = workdir / "keys"
    folder.mkdir(exist_ok=True)
    write_key_pair(folder, "cosign")
    write_key_pair(folder, "other")
    return folder


@pytest.fixture(scope="module")
def published(checkout: Path, registry: Registry, keys: Path) -> Dict[str, str]:
    """reference -> digest, as `pants publish` reported them."""
    result = run_pants(
        checkout,
        *pants_options(registry, keys / "cosign.key"),
        "publish",
        *IMAGES,
        extra_env={"COSIGN_PASSWORD": PASSWORD},
    )
    assert result.returncode == 0, output(result)
    pushed = dict(
        re.findall(r"^pushed (\S+)@(sha256:[0-9a-f]{64})$", result.stdout + result.stderr, re.MULTILINE)
    )
    return pushed


@pytest.fixture(scope="module")
def built(checkout: Path) -> Dict[str, str]:
    """target -> digest, as `pants package` wrote them (each output's image.json)."""
    result = run_pants(checkout, "package", *IMAGES)
    assert result.returncode == 0, output(result)
    digests = {}
    for target in IMAGES:
        path, name = target.split(":")
        image = json.loads(
            (checkout / "dist" / f"{path.replace('/', '.')}" / name / "image.json").read_text()
        )
        digests[target] = image["digest"]
    return digests


def skopeo(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [require_tool("skopeo"), *args], capture_output=True, text=True, timeout=300, check=False
    )


def test_every_image_is_pushed_with_the_digest_it_was_built_with(
    built: Dict[str, str], registry: Registry, published: Dict[str, str]
) -> None:
    for target, repository, tag in [
        ("images/static:static", "images/static", "latest"),
        ("images/static:static-nonroot", "images/static", "nonroot"),
        ("examples/hello-c:hello-c", "examples/hello-c", "latest"),
    ]:
        reference = f"{registry.address}/{repository}:{tag}"
        assert published.get(reference) == built[target], published
        raw = skopeo("inspect", "--tls-verify=false", "--raw", f"docker://{reference}")
        assert raw.returncode == 0, raw.stderr
        assert "sha256:" + hashlib.sha256(raw.stdout.encode()).hexdigest() == published[reference]


def test_skopeo_copies_the_pushed_image_back_with_identical_digests(
    tmp_path: Path, registry: Registry, published: Dict[str, str]
) -> None:
    reference = f"{registry.address}/images/static:latest"
    copied = skopeo(
        "copy",
        "--src-tls-verify=false",
        "--all",
        "--preserve-digests",
        f"docker://{reference}",
        f"oci:{tmp_path / 'copy'}:latest",
    )
    assert copied.returncode == 0, copied.stderr
    index = json.loads((tmp_path / "copy" / "index.json").read_text())
    assert [m["digest"] for m in index["manifests"]] == [published[reference]]


def test_signatures_verify_with_the_key_and_not_with_another(
    checkout: Path, registry: Registry, keys: Path, published: Dict[str, str]
) -> None:
    options = pants_options(registry, keys / "cosign.key")
    good = run_pants(checkout, *options, f"--oci-verify-key={keys / 'cosign.pub'}", "oci-verify", *IMAGES)
    assert good.returncode == 0, output(good)
    assert len(re.findall(r"^verified ", good.stdout + good.stderr, re.MULTILINE)) == len(IMAGES), output(
        good
    )
    bad = run_pants(checkout, *options, f"--oci-verify-key={keys / 'other.pub'}", "oci-verify", IMAGES[0])
    assert bad.returncode != 0, output(bad)
    assert "error:" in bad.stderr and registry.address in bad.stderr, output(bad)


def test_each_image_carries_its_sbom_as_a_signed_attestation(
    checkout: Path, registry: Registry, keys: Path, built: Dict[str, str], published: Dict[str, str]
) -> None:
    client = RegistryClient(registry.address, insecure=True)
    key = load_public_key(keys / "cosign.pub")
    for target, repository in [
        ("images/static:static", "images/static"),
        ("examples/hello-c:hello-c", "examples/hello-c"),
    ]:
        path, name = target.split(":")
        sbom = (checkout / "dist" / path.replace("/", ".") / name / "sbom" / "x86_64.spdx.json").read_bytes()
        assert len(verify_attestations(client, repository, built[target], key, "simple", sbom)) == 1
        with pytest.raises(OciBuildError, match="does not verify"):
            verify_attestations(client, repository, built[target], load_public_key(keys / "other.pub"))


def test_publishing_again_uploads_no_blob(
    checkout: Path, registry: Registry, keys: Path, published: Dict[str, str]
) -> None:
    again = run_pants(
        checkout,
        *pants_options(registry, keys / "cosign.key"),
        "publish",
        *IMAGES,
        extra_env={"COSIGN_PASSWORD": PASSWORD},
    )
    assert again.returncode == 0, output(again)
    text = again.stdout + again.stderr
    assert dict(re.findall(r"^pushed (\S+)@(sha256:[0-9a-f]{64})$", text, re.MULTILINE)) == published
    assert not re.search(r"\buploaded\b", text), output(again)


@pytest.fixture(scope="module")
def podman_runtime(tmp_path_factory) -> Iterator[Podman]:
    # podman refuses a runroot path longer than 50 characters: keep it short.
    with podman(tmp_path_factory.mktemp("podman")) as runtime:
        yield runtime


def static_hello(folder: Path) -> Path:
    source = folder / "hello.c"
    source.write_text('#include <stdio.h>\nint main(void) { puts("Hello Distroless"); return 0; }\n')
    subprocess.run(
        [require_tool("gcc"), "-static", "-O2", "-o", str(folder / "hello"), str(source)],
        check=True,
        timeout=300,
    )
    return folder / "hello"


def dockerfile_context(folder: Path, registry: Registry) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    static_hello(folder)
    (folder / "Dockerfile").write_text(
        f'FROM {registry.address}/images/static:latest\nCOPY hello /hello\nCMD ["/hello"]\n'
    )
    return folder


def test_podman_pulls_and_runs_the_pushed_hello(
    podman_runtime: Podman, registry: Registry, published: Dict[str, str]
) -> None:
    reference = f"{registry.address}/examples/hello-c:latest"
    pulled = subprocess.run(
        podman_runtime.command("pull", "--tls-verify=false", reference),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert pulled.returncode == 0, pulled.stderr
    ran = podman_runtime.run_image(reference)
    assert ran.returncode == 0 and ran.stdout == "Hello Distroless\n", ran.stderr


def test_podman_builds_a_dockerfile_from_the_pushed_static_image(
    tmp_path: Path, podman_runtime: Podman, registry: Registry, published: Dict[str, str]
) -> None:
    context = dockerfile_context(tmp_path / "context", registry)
    built = subprocess.run(
        podman_runtime.command(
            "build",
            "--tls-verify=false",
            "--network",
            "none",
            "-t",
            "localhost/seed-hello:test",
            str(context),
        ),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert built.returncode == 0, built.stdout[-3000:] + built.stderr[-3000:]
    ran = podman_runtime.run_image("localhost/seed-hello:test")
    assert ran.returncode == 0 and ran.stdout == "Hello Distroless\n", ran.stderr


def test_dockerd_pulls_runs_and_builds_from_the_pushed_images(
    tmp_path: Path, tmp_path_factory, registry: Registry, published: Dict[str, str]
) -> None:
    # containerd's socket path must fit in a unix socket address (108 bytes): keep it short.
    with dockerd(tmp_path_factory.mktemp("dockerd")) as docker:
        # dockerd treats 127.0.0.0/8 registries as insecure (plain http) by default.
        reference = f"{registry.address}/examples/hello-c:latest"
        pulled = docker.run("pull", reference)
        assert pulled.returncode == 0, pulled.stderr
        ran = docker.run("run", "--rm", "--network", "none", reference)
        assert ran.returncode == 0 and ran.stdout == "Hello Distroless\n", ran.stderr

        context = dockerfile_context(tmp_path / "context", registry)
        built = subprocess.run(
            docker.command("build", "-t", "seed-hello:test", str(context)),
            capture_output=True,
            text=True,
            timeout=600,
            env={"DOCKER_BUILDKIT": "0", "PATH": "/usr/bin:/bin"},
        )
        assert built.returncode == 0, built.stdout[-3000:] + built.stderr[-3000:]
        ran = docker.run("run", "--rm", "--network", "none", "seed-hello:test")
        assert ran.returncode == 0 and ran.stdout == "Hello Distroless\n", ran.stderr
