"""`python -m ocibuild fetch-apk`: one locked package from the first candidate with the pinned bytes,
against a real HTTP server and file:// mirrors, in a subprocess as the plugin runs it."""

from __future__ import annotations

import hashlib
import subprocess
import sys
from pathlib import Path

from ocibuild.contract import ApkFetchRequest
from testutil.servers import file_server, free_port

SRC = Path(__file__).resolve().parents[2] / "src" / "python"
UPSTREAM = "https://dl-cdn.alpinelinux.org/alpine/v3.19/main/x86_64/pkg-1.0-r0.apk"
PACKAGE = b"pretend apk bytes " * 100


def fetch_apk(workdir: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "ocibuild", "fetch-apk", *args],
        cwd=workdir,
        env={"PYTHONPATH": str(SRC), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
    )


def pin(data: bytes = PACKAGE) -> list:
    return ["--url", UPSTREAM, "--sha256", hashlib.sha256(data).hexdigest(), "--size", str(len(data))]


def test_the_first_candidate_with_the_pinned_bytes_wins(tmp_path: Path) -> None:
    (tmp_path / "good").mkdir()
    (tmp_path / "good/pkg-1.0-r0.apk").write_bytes(PACKAGE)
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad/pkg-1.0-r0.apk").write_bytes(PACKAGE[:-1] + b"X")
    with file_server(tmp_path / "good") as good:
        result = fetch_apk(
            tmp_path,
            *pin(),
            "--output=pkg.apk",
            f"--candidate=http://127.0.0.1:{free_port()}/pkg-1.0-r0.apk",  # nothing listens there
            f"--candidate=file://{tmp_path}/bad/pkg-1.0-r0.apk",  # other bytes, same size
            f"--candidate={good.url}pkg-1.0-r0.apk",
        )
        assert good.requests == ["/pkg-1.0-r0.apk"]
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "pkg.apk").read_bytes() == PACKAGE


def test_the_request_form_is_what_the_plugin_runs(tmp_path: Path) -> None:
    (tmp_path / "m").mkdir()
    (tmp_path / "m/pkg-1.0-r0.apk").write_bytes(PACKAGE)
    request = ApkFetchRequest(
        url=UPSTREAM,
        sha256=hashlib.sha256(PACKAGE).hexdigest(),
        size=len(PACKAGE),
        output="pkg-1.0-r0.apk",
        candidates=(f"file://{tmp_path}/m/pkg-1.0-r0.apk",),
    )
    (tmp_path / "sandbox").mkdir()
    (tmp_path / "sandbox/request.json").write_bytes(request.to_json())
    result = fetch_apk(tmp_path / "sandbox", *request.argv()[1:])
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "sandbox/pkg-1.0-r0.apk").read_bytes() == PACKAGE


def test_no_candidate_with_the_pinned_bytes_is_one_line_naming_the_package(tmp_path: Path) -> None:
    (tmp_path / "m").mkdir()
    (tmp_path / "m/pkg-1.0-r0.apk").write_bytes(PACKAGE + b"more")
    dead = f"http://127.0.0.1:{free_port()}/pkg-1.0-r0.apk"
    result = fetch_apk(
        tmp_path,
        *pin(),
        "--output=pkg.apk",
        f"--candidate={dead}",
        f"--candidate=file://{tmp_path}/m/pkg-1.0-r0.apk",
    )
    assert result.returncode == 1
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith(
        f"error: could not download {UPSTREAM} (sha256 {hashlib.sha256(PACKAGE).hexdigest()}"
    )
    assert f"{dead}: connection refused" in line
    assert f"size {len(PACKAGE) + 4} but expected {len(PACKAGE)}" in line
    assert line.endswith("or re-lock the resolve if the package left the repository")
    assert not (tmp_path / "pkg.apk").exists()


def test_a_malformed_pin_is_refused_before_fetching(tmp_path: Path) -> None:
    result = fetch_apk(tmp_path, "--url", UPSTREAM, "--sha256", "ABC", "--size", "5", "--output=pkg.apk")
    assert result.returncode == 1
    assert "`sha256` must be 64 lowercase hex digits" in result.stderr
