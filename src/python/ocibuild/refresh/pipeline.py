"""The nightly pipeline: re-lock every APK resolve, print the changelog, build, compare each
image with what the registries have under its moving tag, and publish only what changed.

    python -m ocibuild.refresh --registry ghcr.io/acme [--dry-run] [--reproduce] [TARGET ...]

(`build-support/nightly` finds a Python with the core's dependencies and runs this.) Pants does
the locking and the building (`./pants generate-lockfiles`, `./pants package`, so the remote
cache and the plugin's checks apply); the core's registry client and push command do the rest.

Exit status: 0 when published, 0 with "unchanged: ..." when nothing had to be pushed, 1 on any
failure (nothing is tagged then: the push moves tags last). `result.json` in the output folder says
which (`published`, `unchanged`, `dry-run`) for scripts.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Dict, List, Optional, Sequence

import ocibuild
from ocibuild.apk.fetch import Fetcher
from ocibuild.apk.lockfile import LockedPackage, Lockfile, load_lockfile
from ocibuild.contract import SBOM_DIR
from ocibuild.errors import OciBuildError
from ocibuild.refresh.changelog import Changelog, compute_changelog, render_markdown, render_text
from ocibuild.refresh.plan import (
    BuiltImage,
    Destination,
    Step,
    build_date,
    plan_night,
    read_built_images,
    render_plan,
)
from ocibuild.refresh.settings import RepoSettings, read_settings
from ocibuild.registry.client import RegistryClient
from ocibuild.registry.credentials import default_credentials

__all__ = ["main"]

_WROTE = re.compile(r"Wrote (dist/\S+)")
_IMAGE_METADATA = "image.json"


def _log(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def _pants(repo: Path, pants_args: Sequence[str], *args: str) -> str:
    """Run `./pants ARGS` in `repo`; its output (Pants logs what it wrote on stderr)."""
    argv = ["./pants", *pants_args, *args]
    _log(f"nightly: {' '.join(argv)}")
    result = subprocess.run(argv, cwd=repo, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    sys.stderr.write(result.stdout)
    if result.returncode != 0:
        raise OciBuildError(
            f"`{' '.join(argv)}` failed (exit {result.returncode}) in {repo}: see its output above"
        )
    return result.stdout


def _read_lock(repo: Path, path: str) -> Optional[Lockfile]:
    try:
        text = (repo / path).read_text()
    except FileNotFoundError:
        return None
    return load_lockfile(text, path)


def _committed_lock(repo: Path, path: str) -> Optional[Lockfile]:
    """The lock as committed (git HEAD): the changelog's baseline, so that a rerun after a failed
    night, or a night after a --dry-run, still reports the changes since the last reviewed lock.
    Outside a git work tree: the file as it is."""
    inside = subprocess.run(
        ["git", "-C", str(repo), "rev-parse", "--is-inside-work-tree"], capture_output=True
    )
    if inside.returncode != 0:
        return _read_lock(repo, path)
    shown = subprocess.run(["git", "-C", str(repo), "show", f"HEAD:./{path}"], capture_output=True)
    if shown.returncode != 0:
        return None  # a resolve locked for the first time
    return load_lockfile(shown.stdout.decode("utf-8"), f"{path} (HEAD)")


def relock(repo: Path, settings: RepoSettings, pants_args: Sequence[str]) -> Dict[str, Optional[Lockfile]]:
    """Re-lock every resolve; the committed locks, the changelog's baseline."""
    old = {name: _committed_lock(repo, settings.lockfile(name)) for name in settings.resolves}
    _pants(repo, pants_args, "generate-lockfiles", *(f"--resolve={name}" for name in settings.resolves))
    return old


def changelogs(
    repo: Path, settings: RepoSettings, old: Dict[str, Optional[Lockfile]], fetcher: Fetcher
) -> List[Changelog]:
    logs = []
    for name in settings.resolves:
        new = _read_lock(repo, settings.lockfile(name))
        fresh = set(new.packages) if new is not None else set()

        def package_bytes(pkg: LockedPackage) -> Optional[bytes]:
            try:
                return fetcher.fetch(pkg.url, sha256=pkg.sha256, size=pkg.size)
            except OciBuildError as e:
                if pkg in fresh:
                    raise  # just locked: it must be there
                # An old build the mirrors dropped (what makes pinned locks rot): say so, go on.
                _log(f"nightly: {pkg.name} {pkg.version}: contents not compared: {e}")
                return None

        if new is None:
            raise OciBuildError(
                f"{settings.lockfile(name)}: not written by generate-lockfiles for resolve {name}"
            )
        logs.append(compute_changelog(name, old[name], new, package_bytes))
    return logs


def build(repo: Path, pants_args: Sequence[str], targets: Sequence[str]) -> List[BuiltImage]:
    output = _pants(repo, pants_args, "package", *targets)
    found = [repo / rel / _IMAGE_METADATA for rel in dict.fromkeys(_WROTE.findall(output))]
    images = read_built_images(p for p in found if p.is_file())
    if not images:
        raise OciBuildError(f"`./pants package {' '.join(targets)}` built no oci_image: name image targets")
    return images


def _checkout_copy(repo: Path, dest: Path) -> None:
    """The repository's files as git sees them (committed or not: the fresh locks), nothing else."""
    result = subprocess.run(
        ["git", "-C", str(repo), "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        capture_output=True,
    )
    if result.returncode != 0:
        raise OciBuildError(
            f"--reproduce copies the files git lists, but {repo} is not a git work tree "
            f"({result.stderr.decode(errors='replace').strip()})"
        )
    listed = result.stdout.decode()
    for rel in sorted(p for p in listed.split("\0") if p):
        source = repo / rel
        if source.is_file():
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, dest / rel)


def reproduce(
    repo: Path, pants_args: Sequence[str], targets: Sequence[str], images: Sequence[BuiltImage]
) -> None:
    """Rebuild in a second clean checkout, with its own empty local store and no remote cache,
    and fail if any digest differs. The checkout sits beside the repository, so paths relative
    to the build root (`%(buildroot)s/../...` mirrors) mean the same there."""
    dest = repo.parent / f".{repo.name}-reproduce"
    shutil.rmtree(dest, ignore_errors=True)
    try:
        _checkout_copy(repo, dest)
        again = build(
            dest,
            # No pantsd: the checkout is deleted right after.
            [*pants_args, "--no-pantsd", f"--local-store-dir={dest / '.store'}", "--no-remote-cache-read"],
            targets,
        )
    finally:
        shutil.rmtree(dest, ignore_errors=True)
    first = {i.reference: i.digest for i in images}
    second = {i.reference: i.digest for i in again}
    differ = [
        f"{ref}: {first.get(ref)} then {second.get(ref)}"
        for ref in sorted(set(first) | set(second))
        if first.get(ref) != second.get(ref)
    ]
    if differ:
        raise OciBuildError(f"not reproducible: a clean checkout built other digests ({'; '.join(differ)})")
    _log(f"nightly: reproducible: a clean checkout built the same {len(first)} digest(s)")


def _destinations(registries: Sequence[str], insecure: Sequence[str]) -> List[Destination]:
    if not registries:
        raise OciBuildError(
            "no --registry given: name the registry to publish to, e.g. --registry ghcr.io/acme"
        )
    return [Destination(r.rstrip("/"), r.split("/", 1)[0] in insecure) for r in dict.fromkeys(registries)]


def current_digests(
    images: Sequence[BuiltImage], destinations: Sequence[Destination], day: datetime.date
) -> List[Step]:
    """The plan, from a HEAD of each image's moving tag in each registry."""
    credentials = default_credentials()
    clients: Dict[str, RegistryClient] = {}

    def head(dest: Destination, image: BuiltImage) -> Optional[str]:
        host, _, prefix = dest.registry.partition("/")
        if host not in clients:
            clients[host] = RegistryClient(host, insecure=dest.insecure, credentials=credentials, log=_log)
        repository = f"{prefix}/{image.repository}" if prefix else image.repository
        return clients[host].manifest_digest(repository, image.tag)

    return plan_night(images, destinations, head, day)


def push_argv(step: Step, args: argparse.Namespace, tagged: bool) -> List[str]:
    """The core's push of one image to one registry: the untagged pass signs and attests (with
    the image's SBOMs when oci-image wrote them), the tagged pass only moves the tags."""
    argv = [sys.executable, "-m", "ocibuild", "push", f"--layout={step.image.layout}"]
    argv.append(f"--repository={step.destination.repository(step.image)}")
    if step.destination.insecure:
        argv.append(f"--insecure-registry={step.destination.registry.split('/', 1)[0]}")
    if tagged:
        return argv + [f"--tag={t}" for t in step.tags]
    if args.sign_key:
        argv += [f"--sign-key={args.sign_key}", f"--signature-format={args.signature_format}"]
        if args.sign_key_password_env:
            argv.append(f"--sign-key-password-env={args.sign_key_password_env}")
        sboms = step.image.layout.parent / SBOM_DIR
        if sboms.is_dir():
            argv.append(f"--attach-sbom={sboms}")
    return argv


def publish(steps: Sequence[Step], args: argparse.Namespace) -> None:
    """Every image's blobs, manifests and signatures first, untagged; then the tags, dated before
    moving, image by image. A failure in the first pass moves no tag anywhere; the second pass
    finds everything in place and costs a request per tag."""
    env = dict(os.environ)
    core_root = str(Path(ocibuild.__file__).resolve().parent.parent)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (core_root, env.get("PYTHONPATH")) if p)
    for tagged in (False, True):
        for step in steps:
            if subprocess.run(push_argv(step, args, tagged), env=env).returncode != 0:
                raise OciBuildError(
                    f"pushing {step.image.reference} to {step.destination.registry} failed"
                    f"{'' if tagged else ' before any tag moved'}: run the nightly again to finish"
                )


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m ocibuild.refresh",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("targets", nargs="*", default=["images::"], help="what to build (default: images::)")
    parser.add_argument("--repo", type=Path, default=Path.cwd(), help="the repository (default: here)")
    parser.add_argument(
        "--registry",
        action="append",
        default=[],
        metavar="HOST[:PORT][/PATH]",
        help="publish to (repeatable)",
    )
    parser.add_argument(
        "--insecure-registry",
        action="append",
        default=[],
        metavar="HOST[:PORT]",
        help="plain http (loopback tests)",
    )
    parser.add_argument(
        "--dry-run", action="store_true", help="print the changelog and the plan, push nothing"
    )
    parser.add_argument(
        "--reproduce", action="store_true", help="also rebuild in a clean checkout and compare digests"
    )
    parser.add_argument(
        "--output",
        type=Path,
        default=Path("dist/nightly"),
        help="changelog.md, changelog.txt, plan.txt, result.json",
    )
    parser.add_argument("--sign-key", default=None, help="sign every pushed manifest with this key")
    parser.add_argument(
        "--sign-key-password-env", default=None, metavar="NAME", help="variable holding its password"
    )
    parser.add_argument("--signature-format", choices=("simple", "bundle"), default="simple")
    parser.add_argument(
        "--pants-arg", action="append", default=[], help="an option for every ./pants run (repeatable)"
    )
    return parser


def _write(output: Path, name: str, text: str) -> None:
    output.mkdir(parents=True, exist_ok=True)
    (output / name).write_text(text)


def run(args: argparse.Namespace) -> str:
    repo = args.repo.resolve()
    output = args.output if args.output.is_absolute() else repo / args.output
    destinations = _destinations(args.registry, args.insecure_registry)
    day = build_date()
    settings = read_settings(repo)
    old = relock(repo, settings, args.pants_arg)
    logs = changelogs(repo, settings, old, Fetcher(settings.mirror_map()))
    text = render_text(logs)
    print(text, end="", flush=True)
    _write(output, "changelog.txt", text)
    _write(output, "changelog.md", render_markdown(logs))

    images = build(repo, args.pants_arg, args.targets)
    if args.reproduce:
        reproduce(repo, args.pants_arg, args.targets, images)
    steps = current_digests(images, destinations, day)
    plan = render_plan(steps)
    print(plan, end="", flush=True)
    _write(output, "plan.txt", plan)
    changed = [s for s in steps if s.publish]
    if args.dry_run:
        print(f"dry run: {len(changed)} of {len(steps)} image push(es) planned, nothing pushed")
        return "dry-run"
    if not changed:
        print(
            f"unchanged: every registry already has these {len(steps)} image(s) under their tags; nothing pushed"
        )
        return "unchanged"
    publish(changed, args)
    print(
        f"published: {len(changed)} image push(es), tagged {', '.join(sorted({s.tags[0] for s in changed}))}"
    )
    return "published"


def main(argv: Sequence[str]) -> int:
    args = _parser().parse_args(list(argv))
    try:
        status = run(args)
    except OciBuildError as e:
        print(f"error: {e}", file=sys.stderr)
        print("failed: nothing was tagged by this run's failed step; see the error above")
        return 1
    output = args.output if args.output.is_absolute() else args.repo.resolve() / args.output
    _write(output, "result.json", json.dumps({"status": status}, sort_keys=True) + "\n")
    return 0
