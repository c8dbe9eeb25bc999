"""End to end: `oci_layer(contents=...)` takes what any packageable target builds.

One `./pants package` in a fresh checkout builds a layer from each kind of target the examples and
a team's repository use: a `go_binary` (Pants' Go backend), a `pex_binary`, an `archive` and a
`shell_command`. Each file must land at the layer's `destination` under its base name, with the
layer's `file_mode` (or the default: 0755 if the built file is executable, else 0644), owned by
the layer's `owner`, and with the very bytes the target built.
"""

from __future__ import annotations

import hashlib
import os
import stat
import subprocess
import tarfile
from pathlib import Path
from typing import Dict

import pytest
from testutil.checkout import make_checkout, run_pants
from testutil.tars import member_bytes

# Written into the checkout beside the repository's own files. The Go module uses the examples'
# compiler flags, so its standard library comes from the same cache entries as theirs.
KINDS: Dict[str, str] = {
    "kinds/go/go.mod": "module example.com/kinds\n\ngo 1.19\n",
    "kinds/go/main.go": 'package main\n\nimport "fmt"\n\nfunc main() { fmt.Println("hello from go") }\n',
    "kinds/go/BUILD": (
        'go_mod(name="mod", compiler_flags=["-trimpath=/proc/self/cwd"])\n'
        'go_package(name="pkg")\n'
        'go_binary(name="hello-go", linker_flags=["-s", "-w"])\n'
    ),
    "kinds/py/app.py": 'print("hello from python")\n',
    "kinds/py/BUILD": 'python_sources(name="src")\npex_binary(name="hello-py", entry_point="app.py")\n',
    "kinds/data/notes.txt": "notes\n",
    "kinds/data/BUILD": (
        'file(name="notes", source="notes.txt")\n'
        'archive(name="docs", format="tar", files=[":notes"])\n'
        "shell_command(\n"
        '    name="greeting",\n'
        "    command=\"printf 'hello from a shell_command\\\\n' > greeting.txt\",\n"
        '    tools=["printf"],\n'
        '    output_files=["greeting.txt"],\n'
        ")\n"
    ),
    "kinds/layers/BUILD": (
        'oci_layer(name="go", contents=["//kinds/go:hello-go"], destination="/usr/local/bin", file_mode="0755")\n'
        'oci_layer(name="pex", contents=["//kinds/py:hello-py"], destination="/app", owner="65532:65532")\n'
        'oci_layer(name="archive", contents=["//kinds/data:docs"], destination="/srv/data", file_mode="0640")\n'
        'oci_layer(name="shell", contents=["//kinds/data:greeting"], destination="/etc/greeting")\n'
    ),
}

# layer -> (path in the layer, mode, uid:gid)
EXPECTED = {
    "go": ("usr/local/bin/hello-go", 0o755, (0, 0)),
    "pex": ("app/hello-py.pex", 0o755, (65532, 65532)),  # a pex is executable: the default is 0755
    "archive": ("srv/data/docs.tar", 0o640, (0, 0)),
    "shell": ("etc/greeting/greeting.txt", 0o644, (0, 0)),  # not executable: the default is 0644
}


@pytest.fixture(scope="module")
def checkout(tmp_path_factory) -> Path:
    checkout = make_checkout(tmp_path_factory.mktemp("layer-kinds"))
    for rel, text in KINDS.items():
        (checkout / rel).parent.mkdir(parents=True, exist_ok=True)
        (checkout / rel).write_text(text)
    result = run_pants(
        checkout,
        # kinds/py is not under one of the repository's source roots.
        "--source-root-patterns=+['/kinds/py']",
        "package",
        "kinds::",
        timeout=1800,  # a cold Go standard library on a loaded 2-core machine takes minutes
    )
    assert result.returncode == 0, (result.stdout + result.stderr)[-4000:]
    return checkout


def layer_member(checkout: Path, layer: str, path: str) -> tuple:
    with tarfile.open(checkout / "dist/kinds.layers" / layer / "layer.tar.gz") as tar:
        members = {m.name.removeprefix("./").rstrip("/"): m for m in tar.getmembers()}
        assert path in members, f"{path} not in layer {layer}: {sorted(members)}"
        member = members[path]
        assert member.isfile(), f"{path} in layer {layer} is not a regular file"
        files = sorted(name for name, m in members.items() if m.isfile())
        return member, member_bytes(tar, member), files


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.mark.parametrize("layer", sorted(EXPECTED))
def test_file_lands_at_destination_with_mode_and_owner(checkout: Path, layer: str) -> None:
    path, mode, owner = EXPECTED[layer]
    member, _, files = layer_member(checkout, layer, path)
    assert files == [path]  # only the target's output: nothing of the sandbox comes along
    assert stat.S_IMODE(member.mode) == mode, f"{path}: mode {oct(stat.S_IMODE(member.mode))}"
    assert (member.uid, member.gid) == owner


@pytest.mark.parametrize(
    "layer, built",
    [("go", "kinds.go/hello-go"), ("pex", "kinds.py/hello-py.pex"), ("archive", "kinds.data/docs.tar")],
)
def test_packaged_bytes_are_the_layers(checkout: Path, layer: str, built: str) -> None:
    _, content, _ = layer_member(checkout, layer, EXPECTED[layer][0])
    assert sha256(content) == sha256((checkout / "dist" / built).read_bytes())


def test_go_binary_in_the_layer_is_static_and_runs(checkout: Path, tmp_path: Path) -> None:
    _, content, _ = layer_member(checkout, "go", "usr/local/bin/hello-go")
    assert content[:4] == b"\x7fELF"
    assert b"/lib64/ld-linux" not in content and b"libc.so" not in content  # no interpreter: static
    # Reproducible: Go keeps source file names, which must name neither the sandbox nor the host's
    # GOROOT (pants.toml's [golang] settings and the go_mod's -trimpath=/proc/self/cwd).
    assert b"kinds/go/main.go" in content
    for leak in (b"pants-sandbox-", b"/proc/self/cwd", str(checkout).encode(), b"/usr/lib/go"):
        assert leak not in content, leak
    binary = tmp_path / "hello-go"
    binary.write_bytes(content)
    binary.chmod(0o755)
    assert subprocess.run([str(binary)], capture_output=True, text=True).stdout == "hello from go\n"


def test_archive_and_shell_command_contents(checkout: Path, tmp_path: Path) -> None:
    _, shell_out, _ = layer_member(checkout, "shell", "etc/greeting/greeting.txt")
    assert shell_out == b"hello from a shell_command\n"
    _, docs, _ = layer_member(checkout, "archive", "srv/data/docs.tar")
    (tmp_path / "docs.tar").write_bytes(docs)
    with tarfile.open(tmp_path / "docs.tar") as tar:
        assert member_bytes(tar, "kinds/data/notes.txt") == b"notes\n"
    assert os.path.getsize(tmp_path / "docs.tar") == len(docs)
