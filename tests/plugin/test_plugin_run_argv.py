"""`pants run` for `oci_image`: the runtime, platform and argv choices (pants_oci.goals.run)."""

from __future__ import annotations

import os
import pty
import subprocess
from pathlib import Path
from typing import List, Tuple

import pytest
from ocibuild.contract import ImageMetadata, PlatformImageMetadata
from pants_oci.goals.run import (
    TTY_AUTO,
    RunImageError,
    Runtime,
    choose_image,
    choose_runtime,
    host_architecture,
    load_argv,
    refusal_detail,
    run_argv,
)

PODMAN = Runtime("podman", "/usr/bin/podman")
DOCKER = Runtime("docker", "/usr/local/bin/docker")
OWNER = "examples/hello-c:hello-c"


def _metadata(*images: Tuple[str, str, str, str]) -> ImageMetadata:
    """image.json of an image of these (platform, architecture, config digest, docker archive)."""
    return ImageMetadata(
        repository="examples/hello-c",
        tag="latest",
        reference="examples/hello-c:latest",
        digest="sha256:" + "0" * 64,
        media_type="application/vnd.oci.image.manifest.v1+json",
        layout="layout",
        oci_archive="image.oci.tar",
        size=1,
        uncompressed_size=1,
        platforms=tuple(i[0] for i in images),
        images=tuple(
            (platform, PlatformImageMetadata(arch, "sha256:" + "f" * 64, config, 1, 1, archive))
            for platform, arch, config, archive in images
        ),
    )


ONE_PLATFORM = _metadata(("linux/amd64", "x86_64", "sha256:" + "a" * 64, "image.docker.tar"))
TWO_PLATFORMS = _metadata(
    ("linux/amd64", "x86_64", "sha256:" + "a" * 64, "image-x86_64.docker.tar"),
    ("linux/arm64/v8", "aarch64", "sha256:" + "b" * 64, "image-aarch64.docker.tar"),
)


def test_run_argv_puts_global_args_before_run_and_run_args_before_the_image() -> None:
    argv = run_argv(
        PODMAN, ["--root", "/r", "--runtime", "runc"], ["--network", "none"], "sha256:" + "a" * 64
    )
    assert argv[:2] == ("/bin/sh", "-c")
    assert argv[4:] == (
        "/usr/bin/podman",
        "--root",
        "/r",
        "--runtime",
        "runc",
        "run",
        "--rm",
        "--interactive",
        TTY_AUTO,
        "--network",
        "none",
        "sha256:" + "a" * 64,
    )


def test_load_argv() -> None:
    assert load_argv(DOCKER, ["--host", "unix:///d.sock"], "out/image.docker.tar") == (
        "/usr/local/bin/docker",
        "--host",
        "unix:///d.sock",
        "load",
        "--quiet",
        "--input",
        "out/image.docker.tar",
    )


@pytest.fixture
def fake_runtime(tmp_path: Path) -> Runtime:
    """A `podman` that writes its arguments, one per line, to `args` beside it."""
    script = tmp_path / "podman"
    script.write_text(f'#!/bin/sh\nfor arg do printf "%s\\n" "$arg"; done > {tmp_path / "args"}\n')
    script.chmod(0o755)
    return Runtime("podman", str(script))


def arguments_seen(runtime: Runtime) -> List[str]:
    return (Path(runtime.path).parent / "args").read_text().splitlines()


def test_wrapper_runs_the_runtime_without_tty_when_not_on_a_terminal(fake_runtime: Runtime) -> None:
    # As the `run` goal does: the arguments after `--` appended, `--tty=auto` among them kept as is.
    argv = [*run_argv(fake_runtime, ["--root", "/r s"], [], "img"), "a b", "", TTY_AUTO, "exit=3"]
    subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, check=True, timeout=30)
    assert arguments_seen(fake_runtime) == [
        "--root",
        "/r s",
        "run",
        "--rm",
        "--interactive",
        "--tty=false",
        "img",
        "a b",
        "",
        TTY_AUTO,
        "exit=3",
    ]


def test_wrapper_asks_for_a_tty_on_a_terminal(fake_runtime: Runtime) -> None:
    controller, terminal = pty.openpty()
    try:
        argv = [*run_argv(fake_runtime, [], ["--network", "none"], "img"), "x"]
        subprocess.run(argv, stdin=terminal, stdout=terminal, stderr=terminal, check=True, timeout=30)
    finally:
        os.close(terminal)
        os.close(controller)
    assert arguments_seen(fake_runtime) == [
        "run",
        "--rm",
        "--interactive",
        "--tty=true",
        "--network",
        "none",
        "img",
        "x",
    ]


def test_configured_runtime_is_used_and_must_be_found() -> None:
    found = {"podman": ["/usr/bin/podman"], "docker": ["/usr/local/bin/docker", "/usr/bin/docker"]}
    assert choose_runtime("docker", found, ["/usr/local/bin", "/usr/bin"], OWNER) == DOCKER
    with pytest.raises(RunImageError) as error:
        choose_runtime("podman", {"podman": []}, ["/opt/bin", "/usr/bin"], OWNER)
    assert str(error.value) == (
        "examples/hello-c:hello-c: the runtime podman ([oci].runtime) is not on the search path "
        "(/opt/bin:/usr/bin): install it, or fix [oci].executable_search_paths or [oci].runtime."
    )


def test_default_runtime_is_the_first_of_podman_and_docker_found() -> None:
    both = {"podman": ["/usr/bin/podman"], "docker": ["/usr/local/bin/docker"]}
    assert choose_runtime(None, both, ["/usr/local/bin", "/usr/bin"], OWNER) == PODMAN
    assert choose_runtime(None, {"podman": [], "docker": ["/usr/local/bin/docker"]}, [], OWNER) == DOCKER


def test_no_runtime_is_one_line_naming_the_search_path() -> None:
    with pytest.raises(RunImageError) as error:
        choose_runtime(None, {"podman": [], "docker": []}, ["/a", "/b"], OWNER)
    assert str(error.value) == (
        "examples/hello-c:hello-c: `pants run` needs podman or docker, and neither is on the search "
        "path (/a:/b): install one, or set [oci].runtime and [oci].executable_search_paths."
    )
    assert "\n" not in str(error.value)


def test_unknown_runtime_is_refused() -> None:
    with pytest.raises(RunImageError, match=r"^\[oci\]\.runtime is 'nerdctl': set it to podman or docker"):
        choose_runtime("nerdctl", {}, [], OWNER)


def test_podman_loads_the_oci_archive_docker_the_docker_archive() -> None:
    podman = choose_image(ONE_PLATFORM, "podman", "x86_64", OWNER)
    assert (podman.platform, podman.image_id, podman.archive) == (
        "linux/amd64",
        "sha256:" + "a" * 64,
        "image.oci.tar",
    )
    assert choose_image(ONE_PLATFORM, "docker", "x86_64", OWNER).archive == "image.docker.tar"
    # One platform is run whatever the host (the runtime may emulate it, or say why not).
    assert choose_image(ONE_PLATFORM, "docker", "aarch64", OWNER).image_id == "sha256:" + "a" * 64


def test_several_platforms_run_the_hosts() -> None:
    for runtime in ("podman", "docker"):
        chosen = choose_image(TWO_PLATFORMS, runtime, "aarch64", OWNER)
        assert (chosen.platform, chosen.image_id, chosen.archive) == (
            "linux/arm64/v8",
            "sha256:" + "b" * 64,
            "image-aarch64.docker.tar",
        )
    with pytest.raises(RunImageError) as error:
        choose_image(TWO_PLATFORMS, "docker", "riscv64", OWNER)
    assert str(error.value) == (
        "examples/hello-c:hello-c: the image is built for linux/amd64, linux/arm64/v8, none of them "
        "this machine's architecture (riscv64): add riscv64 to its architectures."
    )


def test_host_architecture_uses_alpine_names() -> None:
    assert host_architecture("x86_64") == "x86_64"
    assert host_architecture("AMD64") == "x86_64"
    assert host_architecture("arm64") == "aarch64"
    assert host_architecture("armv7l") == "armv7"
    assert host_architecture("s390x") == "s390x"


def test_refusal_detail_is_the_last_line_of_the_runtimes_error() -> None:
    stderr = b"Getting image source signatures\nError: payload does not match any of the supported image formats\n\n"
    assert refusal_detail(stderr, b"") == "Error: payload does not match any of the supported image formats"
    assert refusal_detail(b"", b"open x: no such file\n") == "open x: no such file"
    assert refusal_detail(b"", b"") == "no output"
