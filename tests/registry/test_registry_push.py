"""Pushing layouts to the real Debian docker-registry (distribution 2.8), read back with skopeo.

A counting proxy sits in front of the registry so the tests can assert on what went over the wire.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Iterator, List, Sequence, Tuple

import pytest
from ocibuild.errors import OciBuildError
from ocibuild.registry.client import RegistryClient
from ocibuild.registry.push import PushTarget, push_layout, read_layout
from testutil.fault_proxy import FaultProxy, fault_proxy
from testutil.paths import repo_root
from testutil.registry_images import (
    build_layout,
    layout_blob,
    layout_blob_digests,
    noise,
    skopeo_copy_back,
    skopeo_raw,
)
from testutil.servers import docker_registry


@pytest.fixture(scope="module")
def proxy(tmp_path_factory) -> Iterator[FaultProxy]:
    with docker_registry(tmp_path_factory.mktemp("registry")) as registry:
        with fault_proxy(registry.address) as p:
            yield p


@pytest.fixture(autouse=True)
def _fresh_counts(proxy: FaultProxy) -> None:
    proxy.reset()


@pytest.fixture(scope="module")
def base(tmp_path_factory) -> Tuple[Path, str]:
    folder = tmp_path_factory.mktemp("base")
    return build_layout(
        folder, "images/base", [{"etc/base.txt": noise(1, 20_000)}, {"etc/more.txt": noise(2, 9_000)}]
    )


def push(
    layout: Path, proxy: FaultProxy, repository: str, tags: Sequence[str] = ("latest",), **options
) -> Tuple[str, List[str]]:
    lines: List[str] = []
    client = RegistryClient(
        proxy.address, insecure=True, log=lines.append, timeout=10, backoff=0.05, **options
    )
    content = read_layout(layout)
    push_layout(content, [PushTarget(client, repository)], tags, log=lines.append)
    return content.digest, lines


def uploads(proxy: FaultProxy) -> int:
    """Blob upload requests: starting sessions, PATCHing and PUTting bodies."""
    return (
        proxy.count("POST", "/blobs/uploads/") + proxy.count("PATCH") + proxy.count("PUT", "/blobs/uploads/")
    )


def test_pushed_image_reads_back_byte_for_byte(proxy: FaultProxy, base, tmp_path: Path) -> None:
    layout, digest = base
    pushed, lines = push(layout, proxy, "images/base", ["latest", "v1"])
    assert pushed == digest
    assert f"pushed {proxy.address}/images/base:latest@{digest}" in lines
    assert f"pushed {proxy.address}/images/base:v1@{digest}" in lines
    assert skopeo_raw(f"{proxy.address}/images/base:v1") == layout_blob(layout, digest)
    assert skopeo_copy_back(f"{proxy.address}/images/base:latest", tmp_path / "back") == digest
    assert layout_blob_digests(tmp_path / "back") == layout_blob_digests(layout)


def test_pushing_again_uploads_nothing_and_costs_a_request_per_tag(proxy: FaultProxy, base) -> None:
    layout, digest = base
    push(layout, proxy, "images/again", ["a", "b"])
    proxy.reset()
    _, lines = push(layout, proxy, "images/again", ["a", "b"])
    assert uploads(proxy) == 0
    assert [(s.method, s.path) for s in proxy.seen] == [
        ("HEAD", "/v2/images/again/manifests/a"),
        ("HEAD", "/v2/images/again/manifests/b"),
    ]
    assert any("nothing to upload" in line for line in lines)


def test_a_new_tag_on_a_pushed_image_skips_every_blob(proxy: FaultProxy, base) -> None:
    layout, digest = base
    push(layout, proxy, "images/retag", ["one"])
    proxy.reset()
    _, lines = push(layout, proxy, "images/retag", ["one", "two"])
    assert uploads(proxy) == 0
    assert sum("skipped: already there" in line for line in lines) == 3  # config and two layers
    assert skopeo_raw(f"{proxy.address}/images/retag:two") == layout_blob(layout, digest)


def test_a_derived_image_mounts_the_base_blobs_from_its_repository(
    proxy: FaultProxy, base, tmp_path: Path
) -> None:
    base_layout, _ = base
    push(base_layout, proxy, "images/base")
    layout, digest = build_layout(
        tmp_path,
        "images/app",
        [{"app/run.txt": noise(3, 5_000)}],
        base=base_layout,
        base_name="images/base:latest",
    )
    proxy.reset()
    _, lines = push(layout, proxy, "images/app")
    mounted = [line for line in lines if "mounted from images/base" in line]
    assert len(mounted) == 2  # the base's two layers; config and the new layer are the app's own
    assert proxy.count("PUT", "/blobs/uploads/") == 2  # config and the app layer
    assert skopeo_copy_back(f"{proxy.address}/images/app:latest", tmp_path / "back") == digest


def test_second_repository_of_a_push_mounts_from_the_first(proxy: FaultProxy, base) -> None:
    layout, digest = base
    lines: List[str] = []
    client = RegistryClient(proxy.address, insecure=True, timeout=10, log=lines.append)
    refs = push_layout(
        read_layout(layout),
        [PushTarget(client, "team/one"), PushTarget(client, "team/two")],
        ["v1"],
        log=lines.append,
    )
    assert [str(r) for r in refs] == [
        f"{proxy.address}/team/one:v1@{digest}",
        f"{proxy.address}/team/two:v1@{digest}",
    ]
    assert sum("mounted from team/one" in line for line in lines) == 3
    # Tags come last: both repositories had every manifest before the first tag moved.
    puts = [s.path for s in proxy.seen if s.method == "PUT" and "/manifests/" in s.path]
    assert puts == [
        f"/v2/team/one/manifests/{digest}",
        f"/v2/team/two/manifests/{digest}",
        "/v2/team/one/manifests/v1",
        "/v2/team/two/manifests/v1",
    ]


def test_multi_arch_index_with_its_manifests(proxy: FaultProxy, tmp_path: Path) -> None:
    layout, digest = build_layout(
        tmp_path, "images/multi", [{"bin/tool": noise(4, 3_000)}], architectures=("x86_64", "aarch64")
    )
    content = read_layout(layout)
    assert len(content.manifests) == 3 and content.top.descriptor.media_type.endswith("index.v1+json")
    pushed, _ = push(layout, proxy, "images/multi")
    assert pushed == digest
    puts = [s.path for s in proxy.seen if s.method == "PUT" and "/manifests/" in s.path]
    assert puts[-2:] == [f"/v2/images/multi/manifests/{digest}", "/v2/images/multi/manifests/latest"]
    assert skopeo_raw(f"{proxy.address}/images/multi:latest") == layout_blob(layout, digest)
    assert skopeo_copy_back(f"{proxy.address}/images/multi:latest", tmp_path / "back") == digest
    assert layout_blob_digests(tmp_path / "back") == layout_blob_digests(layout)


def test_large_blobs_go_in_chunks(proxy: FaultProxy, tmp_path: Path) -> None:
    layout, digest = build_layout(tmp_path, "images/big", [{"data.bin": noise(5, 300_000)}])
    pushed, lines = push(layout, proxy, "images/big", chunk_threshold=64 * 1024, chunk_size=100_000)
    assert proxy.count("PATCH") == 4  # ~300 KB in 100 KB chunks
    assert skopeo_copy_back(f"{proxy.address}/images/big:latest", tmp_path / "back") == pushed == digest


def test_untagged_push_is_by_digest(proxy: FaultProxy, base) -> None:
    layout, digest = base
    _, lines = push(layout, proxy, "images/untagged", [])
    assert lines[-1] == f"pushed {proxy.address}/images/untagged@{digest}"
    assert skopeo_raw(f"{proxy.address}/images/untagged@{digest}") == layout_blob(layout, digest)


def test_unknown_repository_name_is_a_one_line_error(proxy: FaultProxy, base) -> None:
    client = RegistryClient(proxy.address, insecure=True, timeout=10)
    assert client.get_manifest("images/nothing", "latest") is None
    with pytest.raises(OciBuildError) as error:
        client.get_blob("images/nothing", "sha256:" + "0" * 64)
    message = str(error.value)
    assert "\n" not in message
    assert message.startswith(
        f"{proxy.address}: blob sha256:000000000000 in images/nothing: not found (HTTP 404"
    )
    assert "check the registry address and the repository name" in message


def test_cli_prints_one_pushed_line_per_reference(proxy: FaultProxy, base, tmp_path: Path) -> None:
    layout, digest = base
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(repo_root() / "src/python"), os.environ.get("PYTHONPATH", "")]),
    }
    env.pop("OCI_REGISTRY_USERNAME", None)
    env["HOME"] = str(tmp_path)  # no Docker config of the machine's
    argv = [
        sys.executable,
        "-m",
        "ocibuild",
        "push",
        f"--layout={layout}",
        f"--repository={proxy.address}/cli/img",
    ]
    argv += ["--tag=1.0", "--tag=latest", f"--insecure-registry={proxy.address}"]
    result = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        f"pushed {proxy.address}/cli/img:1.0@{digest}",
        f"pushed {proxy.address}/cli/img:latest@{digest}",
    ]
    assert "uploaded" in result.stderr

    bad = subprocess.run(
        [*argv[:4], f"--layout={tmp_path}", f"--repository={proxy.address}/cli/img"],
        capture_output=True,
        text=True,
        env=env,
    )
    assert bad.returncode == 1
    assert bad.stderr.startswith(f"error: {tmp_path}: no oci-layout file")
