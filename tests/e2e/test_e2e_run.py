"""End to end: `./pants run` of `oci_image`s in a fresh checkout, under podman (runc) and dockerd.

The runtime is configured the way a user would: options on the command line for podman (its own
storage, runc, ulimits), environment variables (`PANTS_OCI_*`) for docker (the test's dockerd).
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
from pathlib import Path
from typing import Dict, List, Sequence

import pytest
from testutil.checkout import make_checkout, run_pants
from testutil.servers import Podman, dockerd, podman

HELLO = "examples/hello-c:hello-c"
HELLO_ZSTD = "examples/hello-c:hello-c-zstd"  # hello-c with its own layer as zstd
ARGS = "examples/args-c:args-c"  # prints `arg N: ...` per argument, exits with `exit=N`'s status
RUN_ARGS = ["--network", "none", "--ulimit", "nofile=20000:20000", "--ulimit", "nproc=32768:32768"]


def output(result: subprocess.CompletedProcess) -> str:
    return (result.stdout + result.stderr)[-4000:]


def error_lines(result: subprocess.CompletedProcess, text: str) -> List[str]:
    return [line for line in result.stderr.splitlines() if text in line]


@pytest.fixture(scope="module")
def checkout(tmp_path_factory) -> Path:
    return make_checkout(tmp_path_factory.mktemp("run"))


@pytest.fixture(scope="module")
def podman_runtime(tmp_path_factory):
    with podman(tmp_path_factory.mktemp("podman")) as runtime:
        yield runtime


def podman_options(runtime: Podman) -> List[str]:
    global_args = runtime.command()[1:]  # --root, --runroot, ... --runtime runc
    return [
        "--oci-runtime=podman",
        f"--oci-global-args={shlex.join(global_args)}",
        f"--oci-run-args={shlex.join(RUN_ARGS)}",
    ]


def run_under_podman(checkout: Path, runtime: Podman, target: str, *args: str) -> subprocess.CompletedProcess:
    passthrough: Sequence[str] = ("--", *args) if args else ()
    return run_pants(checkout, *podman_options(runtime), "run", target, *passthrough)


def test_hello_runs_under_podman(checkout: Path, podman_runtime: Podman) -> None:
    result = run_under_podman(checkout, podman_runtime, HELLO)
    assert result.returncode == 0, output(result)
    assert result.stdout == "Hello Distroless\n", output(result)
    # Loaded into podman's store under the image's name, as `podman load` names it.
    images = subprocess.run(
        podman_runtime.command("images", "--format", "{{.Repository}}:{{.Tag}}"),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert "localhost/examples/hello-c:latest" in images.stdout.split(), images.stdout + images.stderr


def test_an_image_with_zstd_layers_runs_under_podman(checkout: Path, tmp_path_factory) -> None:
    # A store of its own: hello-c's image has the same ID (same config), and a store holding it
    # already would not need to decode the zstd layer. (A short path: podman wants runroot <= 50.)
    with podman(tmp_path_factory.mktemp("podz")) as runtime:
        result = run_under_podman(checkout, runtime, HELLO_ZSTD)
        assert result.returncode == 0, output(result)
        assert result.stdout == "Hello Distroless\n", output(result)
    packaged = run_pants(checkout, "package", HELLO_ZSTD)
    assert packaged.returncode == 0, output(packaged)
    image = checkout / "dist/examples.hello-c/hello-c-zstd"
    layout = image / "layout"
    manifest_digest = json.loads((image / "image.json").read_text())["digest"]
    manifest = json.loads((layout / "blobs/sha256" / manifest_digest.split(":")[1]).read_text())
    media_types = [layer["mediaType"] for layer in manifest["layers"]]
    assert media_types[-1] == "application/vnd.oci.image.layer.v1.tar+zstd", media_types
    assert set(media_types[:-1]) == {"application/vnd.oci.image.layer.v1.tar+gzip"}, media_types  # the base's


def test_arguments_after_double_dash_and_the_exit_code_pass_through(
    checkout: Path, podman_runtime: Podman
) -> None:
    result = run_under_podman(checkout, podman_runtime, ARGS, "one two", "--flag", "")
    assert result.returncode == 0, output(result)
    assert result.stdout == "arg 1: one two\narg 2: --flag\narg 3: \n", output(result)

    failed = run_under_podman(checkout, podman_runtime, ARGS, "exit=3")
    assert failed.returncode == 3, output(failed)
    assert failed.stdout == "arg 1: exit=3\n", output(failed)


def test_hello_runs_under_docker(checkout: Path, tmp_path_factory) -> None:
    with dockerd(tmp_path_factory.mktemp("dockerd")) as docker:
        env: Dict[str, str] = {
            "PANTS_OCI_RUNTIME": "docker",
            "PANTS_OCI_GLOBAL_ARGS": shlex.join(["--host", f"unix://{docker.socket}"]),
            "PANTS_OCI_RUN_ARGS": shlex.join(["--network", "none"]),
        }
        # First, into an empty store: the zstd image's docker-archive is loaded and run on 20.10.
        zstd = run_pants(checkout, "run", HELLO_ZSTD, extra_env=env)
        assert zstd.returncode == 0, output(zstd)
        assert zstd.stdout == "Hello Distroless\n", output(zstd)

        result = run_pants(checkout, "run", HELLO, extra_env=env)
        assert result.returncode == 0, output(result)
        assert result.stdout == "Hello Distroless\n", output(result)

        failed = run_pants(checkout, "run", ARGS, "--", "x y", "exit=7", extra_env=env)
        assert failed.returncode == 7, output(failed)
        assert failed.stdout == "arg 1: x y\narg 2: exit=7\n", output(failed)

        # Loaded from the docker-archive under the image's name.
        tags = docker.run("images", "--format", "{{.Repository}}:{{.Tag}}")
        assert "examples/hello-c:latest" in tags.stdout.split(), tags.stdout + tags.stderr


def path_without_runtimes(farm: Path) -> str:
    """A folder linking every program on PATH except podman and docker (first of each name wins)."""
    farm.mkdir(parents=True, exist_ok=True)
    for entry in os.environ["PATH"].split(os.pathsep):
        if not os.path.isdir(entry):
            continue
        for name in sorted(os.listdir(entry)):
            source = Path(entry) / name
            link = farm / name
            if name in ("podman", "docker") or os.path.lexists(link):
                continue
            if source.is_file() and os.access(source, os.X_OK):
                link.symlink_to(source)
    return str(farm)


def test_no_runtime_on_path_is_one_clear_line(checkout: Path, tmp_path: Path) -> None:
    result = run_pants(checkout, "run", HELLO, extra_env={"PATH": path_without_runtimes(tmp_path / "bin")})
    assert result.returncode != 0, output(result)
    lines = error_lines(result, "needs podman or docker")
    assert len(lines) == 1, output(result)
    assert lines[0].endswith(
        f"{HELLO}: `pants run` needs podman or docker, and neither is on the search path "
        f"({tmp_path / 'bin'}): install one, or set [oci].runtime and [oci].executable_search_paths."
    ), output(result)
    assert "Traceback" not in result.stderr, output(result)


def test_a_runtime_that_refuses_the_image_is_one_clear_line(checkout: Path, tmp_path: Path) -> None:
    # A `docker` whose `load` fails as Docker 20.10's does on a format it cannot read.
    fake = tmp_path / "bin"
    fake.mkdir()
    (fake / "docker").write_text(
        "#!/bin/sh\n"
        'for arg do [ "$arg" = load ] && { echo "open /var/lib/docker/tmp/docker-import-1/repositories: '
        'no such file or directory" >&2; exit 1; }; done\n'
        "exit 2\n"
    )
    (fake / "docker").chmod(0o755)
    result = run_pants(
        checkout, "--oci-runtime=docker", f"--oci-executable-search-paths=['{fake}']", "run", HELLO
    )
    assert result.returncode != 0, output(result)
    lines = error_lines(result, "refused the image")
    assert len(lines) == 1, output(result)
    assert lines[0].endswith(
        f"{HELLO}: docker ({fake / 'docker'}) refused the image image.docker.tar (exit code 1): "
        "open /var/lib/docker/tmp/docker-import-1/repositories: no such file or directory"
    ), output(result)
