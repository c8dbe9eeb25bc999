"""Real servers and runtimes for tests, started on 127.0.0.1 and stopped by the tests themselves.

Recipes: ../shared/infra/README.md. Each helper is a context manager that starts one process,
waits until it answers, and on exit stops exactly that process (and cleans mounts it left).
"""

from __future__ import annotations

import contextlib
import functools
import http.server
import json
import os
import shutil
import signal
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator, List, Optional, Sequence

from testutil.provision import bgd_default, ensure_test_deps


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def require_tool(name: str) -> str:
    """The tool's path, installing the tests' dependencies first if it is missing."""
    path = shutil.which(name)
    if not path:
        ensure_test_deps()
        path = shutil.which(name)
    if not path:
        raise RuntimeError(f"{name} is not on PATH after build-support/install-test-deps: check PATH")
    return path


def _wait_until(
    ready: Callable[[], bool], what: str, proc: subprocess.Popen, log: Path, timeout: float
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited with {proc.returncode}: {log.read_text()[-2000:]}")
        try:
            if ready():
                return
        except Exception:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{what} did not become ready in {timeout}s: {log.read_text()[-2000:]}")


@contextlib.contextmanager
def _process(
    argv: Sequence[str],
    log: Path,
    what: str,
    ready: Callable[[], bool],
    timeout: float = 60,
    env: Optional[dict] = None,
) -> Iterator[subprocess.Popen]:
    with open(log, "wb") as out:
        proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    try:
        _wait_until(ready, what, proc, log, timeout)
        yield proc
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()


@dataclass(frozen=True)
class Registry:
    address: str  # host:port


@contextlib.contextmanager
def docker_registry(workdir: Path) -> Iterator[Registry]:
    """Debian's `docker-registry` (distribution 2.8), filesystem storage under `workdir`."""
    with _docker_registry(workdir, None) as registry:
        yield registry


@contextlib.contextmanager
def docker_registry_with_auth(workdir: Path, auth: dict) -> Iterator[Registry]:
    """The same registry with distribution's `auth` section, e.g. `{"htpasswd": {"realm": ..., "path": ...}}`
    or `{"token": {"realm": ..., "service": ..., "issuer": ..., "rootcertbundle": ...}}`."""
    with _docker_registry(workdir, auth) as registry:
        yield registry


@contextlib.contextmanager
def _docker_registry(workdir: Path, auth: Optional[dict]) -> Iterator[Registry]:
    port = free_port()
    config = workdir / "registry.yml"
    settings: dict = {
        "version": 0.1,
        "log": {"level": "info"},
        "storage": {
            "filesystem": {"rootdirectory": str(workdir / "registry-data")},
            "delete": {"enabled": True},
        },
        "http": {"addr": f"127.0.0.1:{port}"},
    }
    if auth is not None:
        settings["auth"] = auth
    config.write_text(json.dumps(settings))

    def ready() -> bool:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/v2/", timeout=2) as r:
                return r.status == 200
        except urllib.error.HTTPError as e:
            return auth is not None and e.code == 401  # up, and asking for credentials

    with _process(
        [require_tool("docker-registry"), "serve", str(config)],
        workdir / "registry.log",
        "docker-registry",
        ready,
    ):
        yield Registry(f"127.0.0.1:{port}")


@dataclass(frozen=True)
class RemoteCache:
    address: str  # grpc://127.0.0.1:port
    instance: str


def bgd_path() -> str:
    """BuildGrid's `bgd`: $OCIBUILD_BGD, or install-test-deps' venv (installed on first use)."""
    if os.environ.get("OCIBUILD_BGD"):
        path = Path(os.environ["OCIBUILD_BGD"])
    else:
        ensure_test_deps()  # quick when installed; completes an interrupted BuildGrid install
        path = bgd_default()
    if not path.exists():
        raise RuntimeError(f"BuildGrid's `bgd` is not at {path}: unset OCIBUILD_BGD or point it at bgd")
    return str(path)


@contextlib.contextmanager
def buildgrid_cache(workdir: Path) -> Iterator[RemoteCache]:
    """BuildGrid as an in-memory REAPI cache (CAS + action cache), instance `main`."""
    port = free_port()
    config = workdir / "buildgrid.yml"
    template = (Path(__file__).parent / "buildgrid-cache.yml").read_text()
    config.write_text(template.replace("127.0.0.1:50051", f"127.0.0.1:{port}"))

    bgd = bgd_path()
    # The port opens before the services are registered: ready means a real CAS and action cache
    # call answers, made with BuildGrid's own Python (it has grpc and the REAPI protos).
    with open(bgd) as script:
        python = script.readline()[2:].split()[0]  # bgd's `#!/path/to/python`
    probe = workdir / "buildgrid_probe.py"
    probe.write_text(_BUILDGRID_PROBE)

    def ready() -> bool:
        answer = subprocess.run(
            [python, str(probe), f"127.0.0.1:{port}", "main"], capture_output=True, timeout=60
        )
        return answer.returncode == 0

    with _process(
        [bgd, "server", "start", "-v", str(config)],
        workdir / "buildgrid.log",
        "BuildGrid",
        ready,
        timeout=180,
    ):
        yield RemoteCache(f"grpc://127.0.0.1:{port}", "main")


_BUILDGRID_PROBE = """\
import sys

import grpc
from buildgrid._protos.build.bazel.remote.execution.v2 import remote_execution_pb2 as re
from buildgrid._protos.build.bazel.remote.execution.v2 import remote_execution_pb2_grpc as rg

address, instance = sys.argv[1:]
channel = grpc.insecure_channel(address)
empty = re.Digest(hash="e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855", size_bytes=0)
rg.ContentAddressableStorageStub(channel).FindMissingBlobs(
    re.FindMissingBlobsRequest(instance_name=instance, blob_digests=[empty]), timeout=10
)
try:
    rg.ActionCacheStub(channel).GetActionResult(
        re.GetActionResultRequest(instance_name=instance, action_digest=empty), timeout=10
    )
except grpc.RpcError as e:
    if e.code() != grpc.StatusCode.NOT_FOUND:
        raise
"""


@dataclass(frozen=True)
class FileServer:
    url: str  # "http://127.0.0.1:<port>/", the served folder's root
    requests: List[str]  # the paths asked for, in order


@contextlib.contextmanager
def file_server(root: Path, port: Optional[int] = None) -> Iterator[FileServer]:
    """A plain HTTP server over `root` (an APK mirror, say) in this process; after the block nothing
    listens at its URL any more (connection refused), as for a mirror that went away."""
    requests: List[str] = []

    class Handler(http.server.SimpleHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:
            requests.append(self.path)

    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", port or free_port()), functools.partial(Handler, directory=str(root))
    )
    thread = threading.Thread(target=server.serve_forever, name="file-server", daemon=True)
    thread.start()
    try:
        yield FileServer(f"http://127.0.0.1:{server.server_port}/", requests)
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


@dataclass(frozen=True)
class Podman:
    workdir: Path

    def command(self, *args: str) -> List[str]:
        d = self.workdir
        return [
            require_tool("podman"),
            "--root",
            str(d / "root"),
            "--runroot",
            str(d / "runroot"),
            "--tmpdir",
            str(d / "tmp"),
            "--storage-driver",
            "vfs",
            "--cgroup-manager",
            "cgroupfs",
            "--events-backend",
            "file",
            "--runtime",
            "runc",
            *args,
        ]

    def run_image(self, image: str, *args: str, user: Optional[str] = None) -> subprocess.CompletedProcess:
        user_args = ["--user", user] if user else []
        return subprocess.run(
            self.command(
                "run",
                "--rm",
                "--network",
                "none",
                "--ulimit",
                "nofile=20000:20000",
                "--ulimit",
                "nproc=32768:32768",
                *user_args,
                image,
                *args,
            ),
            capture_output=True,
            text=True,
            timeout=300,
        )


@contextlib.contextmanager
def podman(workdir: Path) -> Iterator[Podman]:
    for sub in ("root", "runroot", "tmp"):
        (workdir / sub).mkdir(parents=True, exist_ok=True)
    p = Podman(workdir)
    try:
        yield p
    finally:
        subprocess.run(p.command("system", "reset", "--force"), capture_output=True, timeout=120)


@dataclass(frozen=True)
class Docker:
    socket: Path

    def command(self, *args: str) -> List[str]:
        return [require_tool("docker"), "--host", f"unix://{self.socket}", *args]

    def run(self, *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
        return subprocess.run(self.command(*args), capture_output=True, text=True, timeout=timeout)


@contextlib.contextmanager
def dockerd(workdir: Path) -> Iterator[Docker]:
    """Debian's dockerd 20.10 with vfs storage, no networking, its own data/exec roots."""
    d = workdir / "docker"
    d.mkdir(parents=True, exist_ok=True)
    sock = d / "docker.sock"
    config = {
        "storage-driver": "vfs",
        "data-root": str(d / "data"),
        "exec-root": str(d / "exec"),
        "pidfile": str(d / "dockerd.pid"),
        "hosts": [f"unix://{sock}"],
        "bridge": "none",
        "iptables": False,
        "ip6tables": False,
        "ip-forward": False,
        "ip-masq": False,
        "userland-proxy": False,
        "default-ulimits": {"nofile": {"Name": "nofile", "Hard": 20000, "Soft": 20000}},
    }
    (d / "daemon.json").write_text(json.dumps(config))
    docker = Docker(sock)

    def ready() -> bool:
        return subprocess.run(docker.command("info"), capture_output=True, timeout=10).returncode == 0

    try:
        with _process(
            [require_tool("dockerd"), "--config-file", str(d / "daemon.json")],
            d / "dockerd.log",
            "dockerd",
            ready,
            timeout=90,
        ):
            yield docker
    finally:
        # dockerd can leave an nsfs mount under its exec-root.
        with open("/proc/mounts") as mounts:
            points = [line.split()[1] for line in mounts if str(d) in line.split()[1]]
        for point in sorted(points, reverse=True):
            subprocess.run(["umount", "-l", point], capture_output=True)
