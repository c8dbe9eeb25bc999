"""Benchmark (prints figures; not a test): pushing OCI layouts to a loopback docker-registry with
`python -m ocibuild push`, beside `skopeo copy` of the same layouts, cold (empty registry) and warm
(everything already there); with request counts and request-body bytes seen by a counting proxy.

    ./pants package images/static examples::    # the layouts under dist/ (missing ones are skipped)
    PYTHONPATH=src/python:tests python benchmarks/registry_push_bench.py [--runs 3]

Layouts: images/static and the examples from dist/, plus two built here with the core (a 3 x 8 MB
image and a two-platform index). Goal (issue 10): cold no slower than skopeo; warm at most one
request per blob plus one per manifest. "ocibuild library" is push_layout in this process;
"ocibuild push" is one `python -m ocibuild push` process per layout, as `pants publish` runs it, so
it also pays a Python start and the import of requests (~0.15 s per process on an idle machine,
several times that on a loaded one), which a Go binary such as skopeo does not.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable, Dict, List, Sequence, Tuple

from ocibuild.registry.client import RegistryClient
from ocibuild.registry.push import PushTarget, push_layout, read_layout
from testutil.fault_proxy import FaultProxy, fault_proxy
from testutil.paths import repo_root
from testutil.registry_images import build_layout, noise
from testutil.servers import docker_registry, require_tool

DIST_LAYOUTS = (
    ("images/static", "dist/images.static/static/layout"),
    ("examples/hello-c", "dist/examples.hello-c/hello-c/layout"),
    ("examples/hello-go", "dist/examples.hello-go/hello-go/layout"),
    ("examples/args-c", "dist/examples.args-c/args-c/layout"),
)

Layouts = List[Tuple[str, Path]]
Pusher = Callable[[str, str, Path], None]  # (registry address, repository, layout)


def collect_layouts(work: Path) -> Layouts:
    root = repo_root()
    layouts = [(repo, root / rel) for repo, rel in DIST_LAYOUTS if (root / rel / "index.json").is_file()]
    missing = [repo for repo, rel in DIST_LAYOUTS if not (root / rel / "index.json").is_file()]
    if missing:
        print(f"skipped (run ./pants package first): {', '.join(missing)}")
    big, _ = build_layout(
        work / "big", "bench/big", [{f"blob{i}": noise(100 + i, 8 << 20)} for i in range(3)]
    )
    multi, _ = build_layout(
        work / "multi",
        "bench/multi",
        [{"bin/tool": noise(200, 1 << 20)}],
        architectures=("x86_64", "aarch64"),
    )
    return [*layouts, ("bench/big", big), ("bench/multi", multi)]


def ocibuild_in_process(address: str, repository: str, layout: Path) -> None:
    client = RegistryClient(address, insecure=True)
    push_layout(read_layout(layout), [PushTarget(client, repository)], ["latest"])


def ocibuild_push(address: str, repository: str, layout: Path) -> None:
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(repo_root() / "src/python"), os.environ.get("PYTHONPATH", "")]),
    }
    argv = [
        sys.executable,
        "-m",
        "ocibuild",
        "push",
        f"--layout={layout}",
        f"--repository={address}/{repository}",
    ]
    argv += ["--tag=latest", f"--insecure-registry={address}"]
    subprocess.run(argv, check=True, capture_output=True, env=env)


def skopeo_push(address: str, repository: str, layout: Path) -> None:
    subprocess.run(
        [
            require_tool("skopeo"),
            "copy",
            "--all",
            "--preserve-digests",
            "--dest-tls-verify=false",
            f"oci:{layout}",
            f"docker://{address}/{repository}:latest",
        ],
        check=True,
        capture_output=True,
    )


def push_all(pusher: Pusher, address: str, layouts: Layouts) -> float:
    start = time.perf_counter()
    for repository, layout in layouts:
        pusher(address, repository, layout)
    return time.perf_counter() - start


def timed(pusher: Pusher, layouts: Layouts, runs: int, work: Path) -> Tuple[float, float]:
    """Best cold and best warm time over `runs`, each run on a fresh registry (and a fresh port,
    which also makes skopeo's blob-info cache cold)."""
    cold, warm = [], []
    for n in range(runs):
        folder = Path(tempfile.mkdtemp(prefix="run-", dir=work))
        with docker_registry(folder) as registry:
            cold.append(push_all(pusher, registry.address, layouts))
            warm.append(push_all(pusher, registry.address, layouts))
    return min(cold), min(warm)


def counted(pusher: Pusher, layouts: Layouts, work: Path) -> Dict[str, Tuple[int, int, Dict[str, int]]]:
    """Requests, request-body bytes and requests by method, cold then warm, through the proxy."""
    figures = {}
    folder = Path(tempfile.mkdtemp(prefix="count-", dir=work))
    with docker_registry(folder) as registry, fault_proxy(registry.address) as proxy:
        for phase in ("cold", "warm"):
            proxy.reset()
            push_all(pusher, proxy.address, layouts)
            figures[phase] = (len(proxy.seen), proxy.bytes_received(), _by_method(proxy))
    return figures


def _by_method(proxy: FaultProxy) -> Dict[str, int]:
    methods: Dict[str, int] = {}
    for seen in proxy.seen:
        methods[seen.method] = methods.get(seen.method, 0) + 1
    return methods


def budget(layouts: Sequence[Tuple[str, Path]]) -> Tuple[int, int, int]:
    """(blobs, manifests, warm request budget = blobs + manifests)."""
    blobs = manifests = 0
    for _, layout in layouts:
        content = read_layout(layout)
        blobs += len(content.blobs)
        manifests += len(content.manifests)
    return blobs, manifests, blobs + manifests


def main(argv: List[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="registry-push-bench-") as tmp:
        work = Path(tmp)
        layouts = collect_layouts(work)
        blobs, manifests, warm_budget = budget(layouts)
        total = sum(sum(b.size for b in read_layout(layout).blobs) for _, layout in layouts)
        print(f"{len(layouts)} layouts: {blobs} blobs ({total / 1e6:.1f} MB), {manifests} manifests")
        results = {}
        pushers = (
            ("ocibuild library", ocibuild_in_process),
            ("ocibuild push", ocibuild_push),
            ("skopeo copy", skopeo_push),
        )
        for name, pusher in pushers:
            results[name] = (timed(pusher, layouts, args.runs, work), counted(pusher, layouts, work))
        print(
            f"{'':16}{'cold s':>8}{'warm s':>8}{'cold req':>10}{'cold MB':>9}{'warm req':>10}  warm by method"
        )
        for name, ((cold, warm), figures) in results.items():
            (creq, cbytes, _), (wreq, _, wmethods) = figures["cold"], figures["warm"]
            methods = " ".join(f"{m}={n}" for m, n in sorted(wmethods.items()))
            print(f"{name:16}{cold:8.2f}{warm:8.2f}{creq:10d}{cbytes / 1e6:9.1f}{wreq:10d}  {methods}")
        skopeo_cold = results["skopeo copy"][0][0]
        for name in ("ocibuild library", "ocibuild push"):
            cold = results[name][0][0]
            verdict = "OK" if cold <= skopeo_cold else "SLOWER"
            print(f"cold: {name} {cold:.2f}s vs skopeo {skopeo_cold:.2f}s -> {verdict}")
        ours_warm_requests = results["ocibuild push"][1]["warm"][0]
        print(
            f"warm: {ours_warm_requests} requests, budget {warm_budget} (1 per blob + 1 per manifest) -> "
            f"{'OK' if ours_warm_requests <= warm_budget else 'OVER'}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
