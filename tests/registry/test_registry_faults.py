"""Pushing through a fault-injecting proxy: dropped connections, 500s, 429 with Retry-After, stalls, an outage.

Each push must end with the image in the registry under the right digests (read back with skopeo),
and an outage must leave the old tag alone until a re-run completes.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Dict, Iterator, List, Tuple

import pytest
from ocibuild.errors import OciBuildError
from ocibuild.registry.client import RegistryClient
from ocibuild.registry.push import PushTarget, push_layout, read_layout
from testutil.fault_proxy import Fault, FaultProxy, fault_proxy
from testutil.registry_images import build_layout, layout_blob_digests, noise, skopeo_copy_back, skopeo_raw
from testutil.servers import Registry, docker_registry

TIMEOUT = 1.0  # the client's per-request timeout; stalls last longer


@pytest.fixture(scope="module")
def servers(tmp_path_factory) -> Iterator[Tuple[Registry, FaultProxy]]:
    with docker_registry(tmp_path_factory.mktemp("registry")) as registry:
        with fault_proxy(registry.address) as proxy:
            yield registry, proxy


@pytest.fixture
def proxy(servers) -> FaultProxy:
    servers[1].reset()
    return servers[1]


def push(layout: Path, proxy: FaultProxy, repository: str, **options) -> List[str]:
    lines: List[str] = []
    settings: Dict[str, Any] = {"timeout": TIMEOUT, "backoff": 0.05, "max_attempts": 4, **options}
    client = RegistryClient(proxy.address, insecure=True, log=lines.append, **settings)
    push_layout(read_layout(layout), [PushTarget(client, repository)], ["latest"], log=lines.append)
    return lines


def assert_pushed(proxy: FaultProxy, repository: str, layout: Path, digest: str, tmp_path: Path) -> None:
    assert skopeo_copy_back(f"{proxy.address}/{repository}:latest", tmp_path / "back") == digest
    assert layout_blob_digests(tmp_path / "back") == layout_blob_digests(layout)


def test_every_fault_once(proxy: FaultProxy, tmp_path: Path) -> None:
    layout, digest = build_layout(
        tmp_path, "images/faults", [{"a.bin": noise(10, 30_000)}, {"b.bin": noise(11, 20_000)}]
    )
    proxy.inject(Fault("drop", "PUT", "/blobs/uploads/"))  # the first blob body, cut in half
    proxy.inject(Fault("status", "HEAD", "/blobs/", status=500))
    proxy.inject(Fault("status", "PUT", "/manifests/", status=429, retry_after="1"))
    proxy.inject(Fault("stall", "POST", "/blobs/uploads/", seconds=TIMEOUT + 0.5, skip=1))
    started = time.monotonic()
    lines = push(layout, proxy, "images/faults")
    assert time.monotonic() - started >= 1.0  # Retry-After was honoured
    assert all(f.times == 0 for f in proxy.faults), "every fault fired"
    retries = [line for line in lines if "retrying in" in line]
    assert any("HTTP 500" in line for line in retries)
    assert any("HTTP 429" in line and "retrying in 1.0s" in line for line in retries)
    assert any("timed out" in line for line in retries)
    assert any("connection dropped" in line for line in retries)
    assert_pushed(proxy, "images/faults", layout, digest, tmp_path)


def test_chunked_upload_resumes_from_the_registrys_range(proxy: FaultProxy, tmp_path: Path) -> None:
    layout, digest = build_layout(tmp_path, "images/resume", [{"big.bin": noise(12, 250_000)}])
    proxy.inject(Fault("status", "PATCH", "/blobs/uploads/", status=502, skip=1))  # the second chunk
    lines = push(layout, proxy, "images/resume", chunk_threshold=50_000, chunk_size=100_000)
    assert [line.rsplit(" ", 1)[1] for line in lines if "resuming at byte" in line] == ["100000"]
    assert proxy.count("POST", "/blobs/uploads/") == 2  # the layer's session and the config's: no restart
    assert proxy.count("GET", "/blobs/uploads/") == 1  # the upload's status, with its Range
    assert sum(s.body_bytes for s in proxy.seen if s.method == "PATCH" and s.status == 202) == 250_266
    assert_pushed(proxy, "images/resume", layout, digest, tmp_path)


def test_chunked_upload_cut_mid_chunk_starts_a_new_session(proxy: FaultProxy, tmp_path: Path) -> None:
    # distribution 2.8 forgets an upload whose PATCH was cut short (its status answers 404): start again.
    layout, digest = build_layout(tmp_path, "images/cut", [{"big.bin": noise(15, 250_000)}])
    proxy.inject(Fault("drop", "PATCH", "/blobs/uploads/", skip=1))
    lines = push(layout, proxy, "images/cut", chunk_threshold=50_000, chunk_size=100_000)
    assert any("upload session gone (HTTP 404)" in line for line in lines)
    assert proxy.count("POST", "/blobs/uploads/") == 3
    assert_pushed(proxy, "images/cut", layout, digest, tmp_path)


def test_5xx_until_the_last_attempt_is_a_one_line_error(proxy: FaultProxy, tmp_path: Path) -> None:
    layout, _ = build_layout(tmp_path, "images/broken", [{"x": b"x"}])
    proxy.inject(Fault("status", "HEAD", "/blobs/", status=503, times=10))
    with pytest.raises(OciBuildError) as error:
        push(layout, proxy, "images/broken", max_attempts=3)
    message = str(error.value)
    assert (
        message.startswith(f"{proxy.address}: HEAD blob sha256:")
        and "in images/broken failed: HTTP 503" in message
    )
    assert proxy.count("HEAD", "/blobs/") == 3


def test_outage_halfway_leaves_the_tag_alone_and_a_rerun_completes(
    servers, proxy: FaultProxy, tmp_path: Path
) -> None:
    registry, _ = servers
    old, old_digest = build_layout(tmp_path / "old", "images/outage", [{"v": b"1"}])
    push(old, proxy, "images/outage")
    new, new_digest = build_layout(
        tmp_path / "new", "images/outage", [{"a": noise(13, 10_000)}, {"b": noise(14, 10_000)}]
    )
    proxy.reset()
    proxy.inject(
        Fault("down", "PUT", "/blobs/uploads/", skip=1)
    )  # after the first blob, the registry is gone
    with pytest.raises(OciBuildError) as error:
        push(new, proxy, "images/outage", max_attempts=2)
    assert "check that the registry is up" in str(error.value)
    assert not any(s.method == "PUT" and "/manifests/" in s.path for s in proxy.seen)

    direct = RegistryClient(registry.address, insecure=True)
    assert direct.manifest_digest("images/outage", "latest") == old_digest

    proxy.reset()  # the registry is back
    lines = push(new, proxy, "images/outage")
    assert sum("skipped: already there" in line for line in lines) == 1  # what the failed run got in
    assert direct.manifest_digest("images/outage", "latest") == new_digest
    assert (
        skopeo_raw(f"{registry.address}/images/outage:latest")
        == (new / "blobs/sha256" / new_digest[7:]).read_bytes()
    )
