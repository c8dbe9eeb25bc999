"""End to end: the static image and the examples, built by `./pants package` in a fresh checkout,
inspected with skopeo/umoci and run under podman (runc) and dockerd, pushed to a real registry.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Dict

import pytest
from testutil.checkout import make_checkout, run_pants
from testutil.servers import docker_registry, dockerd, podman, require_tool

HELLO_IMAGES = ["hello-c/hello-c", "hello-rust/hello-rust", "hello-go/hello-go"]
STATIC_PACKAGES = [
    "alpine-baselayout-data",
    "alpine-keys",
    "alpine-release",
    "ca-certificates-bundle",
    "tzdata",
]


def image_dir(checkout: Path, name: str) -> Path:
    """`examples/hello-c:hello-c` is packaged to dist/examples.hello-c/hello-c."""
    directory, target = name.split("/")
    base = "images.static" if directory == "static" else f"examples.{directory}"
    return checkout / "dist" / base / target


def tag_of(image: Path) -> str:
    return json.loads((image / "image.json").read_text())["tag"]


def run(*argv: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run(argv, capture_output=True, text=True, timeout=timeout)


def ok(result: subprocess.CompletedProcess) -> str:
    assert result.returncode == 0, (result.stdout + result.stderr)[-4000:]
    return result.stdout


@pytest.fixture(scope="module")
def checkout(tmp_path_factory) -> Path:
    checkout = make_checkout(tmp_path_factory.mktemp("images"))
    ok(run_pants(checkout, "package", "images/static:", "examples::"))
    return checkout


@pytest.fixture(scope="module")
def static_rootfs(checkout: Path, tmp_path_factory) -> Path:
    bundle = tmp_path_factory.mktemp("umoci") / "bundle"
    layout = image_dir(checkout, "static/static") / "layout"
    ok(run(require_tool("umoci"), "unpack", "--image", f"{layout}:latest", str(bundle)))
    return bundle / "rootfs"


def test_skopeo_and_umoci_accept_every_image(checkout: Path, tmp_path: Path) -> None:
    names = [
        "static/static",
        "static/static-nonroot",
        *HELLO_IMAGES,
        "basecheck/basecheck",
        "basecheck/basecheck-nonroot",
    ]
    for name in names:
        image = image_dir(checkout, name)
        tag = tag_of(image)
        metadata = json.loads((image / "image.json").read_text())
        inspected = json.loads(ok(run(require_tool("skopeo"), "inspect", f"oci:{image}/layout:{tag}")))
        assert inspected["Digest"] == metadata["digest"] and inspected["Os"] == "linux"
        archived = json.loads(
            ok(run(require_tool("skopeo"), "inspect", f"oci-archive:{image}/image.oci.tar"))
        )
        assert archived["Digest"] == metadata["digest"]
        ok(run(require_tool("umoci"), "unpack", "--image", f"{image}/layout:{tag}", str(tmp_path / name)))


def test_static_image_contents(static_rootfs: Path) -> None:
    root = static_rootfs
    passwd = (root / "etc/passwd").read_text().splitlines()
    assert "nonroot:x:65532:65532::/home/nonroot:/sbin/nologin" in passwd or any(
        line.startswith("nonroot:x:65532:65532:") and ":/home/nonroot:" in line for line in passwd
    )
    assert any(line.startswith("root:x:0:0:") for line in passwd)
    assert any(line.startswith("nonroot:x:65532:") for line in (root / "etc/group").read_text().splitlines())
    tmp = (root / "tmp").lstat()
    assert oct(tmp.st_mode & 0o7777) == "0o1777" and tmp.st_uid == 0
    home = (root / "home/nonroot").lstat()
    assert (home.st_uid, home.st_gid) == (65532, 65532)
    bundle = (root / "etc/ssl/certs/ca-certificates.crt").read_text()
    assert bundle.count("BEGIN CERTIFICATE") > 100
    assert (root / "usr/share/zoneinfo/America/New_York").read_bytes().startswith(b"TZif")
    assert "ID=alpine" in (root / "etc/os-release").read_text()
    installed = (root / "lib/apk/db/installed").read_text()
    names = sorted(line[2:] for line in installed.splitlines() if line.startswith("P:"))
    assert names == STATIC_PACKAGES
    # Nothing but the packages' files, the accounts' home and the apk database: no shell, no binaries.
    assert not (root / "bin/sh").exists() and not (root / "bin/busybox").exists()
    for path in root.rglob("*"):
        info = path.lstat()
        assert info.st_uid in (0, 65532), path
        assert not info.st_mode & 0o6000, f"{path} is setuid/setgid"


@pytest.fixture(scope="module")
def podman_runtime(tmp_path_factory):
    with podman(tmp_path_factory.mktemp("podman")) as runtime:
        yield runtime


@pytest.mark.parametrize("name", HELLO_IMAGES)
def test_examples_run_under_podman(checkout: Path, podman_runtime, name: str) -> None:
    image = image_dir(checkout, name)
    result = podman_runtime.run_image(f"oci:{image}/layout:{tag_of(image)}")
    assert result.returncode == 0, result.stderr
    assert result.stdout == "Hello Distroless\n"


def basecheck_lines(output: str) -> Dict[str, str]:
    return {line.split()[1].rstrip(":"): line for line in output.splitlines() if line.strip()}


@pytest.mark.parametrize(
    "name, user_line",
    [
        ("basecheck/basecheck", 'uid 0 is "root"'),
        ("basecheck/basecheck-nonroot", 'uid 65532 is "nonroot", gid 65532 is "nonroot", home /home/nonroot'),
    ],
)
def test_base_works_for_root_and_nonroot(checkout: Path, podman_runtime, name: str, user_line: str) -> None:
    image = image_dir(checkout, name)
    result = podman_runtime.run_image(f"oci:{image}/layout:{tag_of(image)}")
    assert result.returncode == 0, result.stdout + result.stderr
    lines = basecheck_lines(result.stdout)
    assert set(lines) == {"ca-bundle", "system-pool", "empty-pool", "tzdata", "user", "tmp"}
    assert all(line.startswith("ok ") for line in lines.values()), result.stdout
    assert '"R3" verifies to "ISRG Root X1"' in lines["ca-bundle"]
    assert "EDT -04:00" in lines["tzdata"] and "EST -05:00" in lines["tzdata"]
    assert user_line in lines["user"]


def test_podman_loads_the_oci_archive(checkout: Path, podman_runtime) -> None:
    image = image_dir(checkout, "hello-c/hello-c")
    loaded = ok(
        subprocess.run(
            podman_runtime.command("load", "-i", str(image / "image.oci.tar")),
            capture_output=True,
            text=True,
            timeout=300,
        )
    )
    assert "examples/hello-c:latest" in loaded
    result = podman_runtime.run_image("localhost/examples/hello-c:latest")
    assert result.stdout == "Hello Distroless\n", result.stderr


def test_examples_run_under_docker(checkout: Path, tmp_path_factory) -> None:
    outputs: Dict[str, str] = {}
    with dockerd(tmp_path_factory.mktemp("dockerd")) as docker:
        for name in [*HELLO_IMAGES, "basecheck/basecheck", "basecheck/basecheck-nonroot"]:
            image = image_dir(checkout, name)
            metadata = json.loads((image / "image.json").read_text())
            loaded = docker.run("load", "-i", str(image / "image.docker.tar"))
            assert loaded.returncode == 0, loaded.stderr
            reference = metadata["reference"]
            assert reference in loaded.stdout
            image_id = ok(docker.run("image", "inspect", "--format", "{{.Id}}", reference)).strip()
            assert image_id == metadata["images"]["linux/amd64"]["config"]
            result = docker.run("run", "--rm", "--network", "none", reference)
            assert result.returncode == 0, result.stdout + result.stderr
            outputs[name] = result.stdout
    for name in HELLO_IMAGES:
        assert outputs[name] == "Hello Distroless\n"
    for name, user in (
        ("basecheck/basecheck", 'uid 0 is "root"'),
        ("basecheck/basecheck-nonroot", 'uid 65532 is "nonroot"'),
    ):
        lines = basecheck_lines(outputs[name])
        assert len(lines) == 6 and all(line.startswith("ok ") for line in lines.values()), outputs[name]
        assert user in lines["user"]


def test_push_to_a_registry_keeps_the_digest(checkout: Path, tmp_path: Path, podman_runtime) -> None:
    image = image_dir(checkout, "hello-go/hello-go")
    metadata = json.loads((image / "image.json").read_text())
    with docker_registry(tmp_path) as registry:
        remote = f"docker://{registry.address}/examples/hello-go:latest"
        ok(
            run(
                require_tool("skopeo"),
                "copy",
                "--dest-tls-verify=false",
                f"oci:{image}/layout:latest",
                remote,
            )
        )
        inspected = json.loads(ok(run(require_tool("skopeo"), "inspect", "--tls-verify=false", remote)))
        assert inspected["Digest"] == metadata["digest"]
        reference = f"{registry.address}/examples/hello-go:latest"
        pull = podman_runtime.command("pull", "--tls-verify=false", reference)
        ok(subprocess.run(pull, capture_output=True, text=True, timeout=300))
        pulled = podman_runtime.run_image(reference)
        assert pulled.stdout == "Hello Distroless\n", pulled.stderr


def manifest_of(image: Path) -> dict:
    layout = image / "layout"
    digest = json.loads((image / "image.json").read_text())["images"]["linux/amd64"]["manifest"]
    return json.loads((layout / "blobs/sha256" / digest.split(":")[1]).read_text())


def test_changing_the_c_source_changes_only_the_app_layer(checkout: Path) -> None:
    before = manifest_of(image_dir(checkout, "hello-c/hello-c"))
    static_before = json.loads((image_dir(checkout, "static/static") / "image.json").read_text())["digest"]
    source = checkout / "examples/hello-c/hello.c"
    source.write_text(source.read_text().replace("Hello Distroless", "Hello again, Distroless"))
    ok(run_pants(checkout, "package", "images/static:static", "examples/hello-c:hello-c"))
    after = manifest_of(image_dir(checkout, "hello-c/hello-c"))
    static_after = json.loads((image_dir(checkout, "static/static") / "image.json").read_text())["digest"]
    assert static_after == static_before
    assert len(before["layers"]) == len(after["layers"]) == 2
    assert before["layers"][0] == after["layers"][0]  # the static base layer, reused as is
    assert before["layers"][1]["digest"] != after["layers"][1]["digest"]
    assert before["config"]["digest"] != after["config"]["digest"]
