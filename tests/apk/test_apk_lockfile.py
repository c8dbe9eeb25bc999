"""The lockfile: apko's v1 format both ways (apko's own golden locks load; apko's structs, as
pkg/lock/lock.go declares them, read ours), our extras, strict validation, and the closure of a
subset layer from the lock alone."""

from __future__ import annotations

import base64
import copy
import dataclasses
import hashlib
import json
import re
from pathlib import Path
from typing import Any, Dict, List, Tuple

import pytest
from ocibuild.apk.lockfile import (
    LockedKey,
    LockedPackage,
    LockedRepository,
    LockedSection,
    Lockfile,
    dump_lockfile,
    load_lockfile,
    select_packages,
    spec_lock_checksum,
)
from ocibuild.errors import OciBuildError
from ocibuild.layer.apk_layer import ApkLayerOptions, assemble_root, build_apk_layer
from testutil.apk_layers import alpine_lock, alpine_packages_dir
from testutil.apk_oracle import expected_install_order
from testutil.apkbuild import TEST_KEY

APKO_FIXTURES = Path(__file__).parent / "fixtures" / "apko"  # resources of the test (tests/BUILD)
APKO_LOCKS = sorted(p.name for p in APKO_FIXTURES.glob("*.lock.json"))
OUR_EXTRAS = {"sha256", "size", "replaces", "dependencies", "provides"}


def _pkg(name: str, arch: str, size: int = 3000) -> LockedPackage:
    return LockedPackage(
        name=name,
        version="1.0-r0",
        architecture=arch,
        url=f"https://dl-cdn.alpinelinux.org/alpine/v3.19/main/{arch}/{name}-1.0-r0.apk",
        checksum="Q1" + "C" * 27 + "=",  # = the control member's sha1, as apk's Q1 is
        signature=LockedSection(0, 600, "sha1-" + "B" * 27 + "="),
        control=LockedSection(600, 1100, "sha1-" + "C" * 27 + "="),
        data=LockedSection(1100, size, "sha256-" + "D" * 43 + "="),
        sha256="e" * 64,
        size=size,
        replaces=("old-" + name,),
        dependencies=("so:libc.musl-x86_64.so.1", "!conflicting"),
        provides=(f"cmd:{name}=1.0-r0",),
    )


LOCK = Lockfile(
    spec_name="images/static/apko.yaml",
    spec_checksum=spec_lock_checksum(b"contents: {}\n"),
    keys=(LockedKey(TEST_KEY.name, "keys/" + TEST_KEY.name, TEST_KEY.public_pem),),
    repositories=(
        LockedRepository(
            "dl-cdn.alpinelinux.org/alpine/v3.19/main/x86_64",
            "https://dl-cdn.alpinelinux.org/alpine/v3.19/main/x86_64/APKINDEX.tar.gz",
            "x86_64",
        ),
        LockedRepository(
            "dl-cdn.alpinelinux.org/alpine/v3.19/main/aarch64",
            "https://dl-cdn.alpinelinux.org/alpine/v3.19/main/aarch64/APKINDEX.tar.gz",
            "aarch64",
        ),
    ),
    packages=(_pkg("musl", "x86_64"), _pkg("busybox", "x86_64"), _pkg("musl", "aarch64")),
)


def test_round_trip_is_byte_identical() -> None:
    text = dump_lockfile(LOCK)
    assert text.endswith("}\n") and text.isascii()
    loaded = load_lockfile(text, "apko.lock.json")
    assert loaded == LOCK
    assert dump_lockfile(loaded) == text


def test_apko_v1_layout() -> None:
    doc = json.loads(dump_lockfile(LOCK))
    assert list(doc) == ["version", "config", "contents"]
    assert doc["version"] == "v1"
    digest = base64.b64encode(hashlib.sha256(b"contents: {}\n").digest()).decode()
    assert doc["config"] == {"name": "images/static/apko.yaml", "checksum": "sha256-" + digest}
    assert list(doc["contents"]) == [
        "keyring",
        "build_repositories",
        "runtime_repositories",
        "repositories",
        "packages",
    ]
    assert doc["contents"]["runtime_repositories"] == [] and doc["contents"]["build_repositories"] == []
    assert doc["contents"]["keyring"][0] == {
        "name": TEST_KEY.name,
        "url": "keys/" + TEST_KEY.name,
        "content": TEST_KEY.public_pem.decode(),
    }
    pkg = doc["contents"]["packages"][0]
    assert list(pkg) == [
        "name",
        "url",
        "version",
        "architecture",
        "signature",
        "control",
        "data",
        "checksum",
        "sha256",
        "size",
        "replaces",
        "dependencies",
        "provides",
    ]
    # HTTP-style inclusive ranges, as apko writes them
    assert pkg["signature"]["range"] == "bytes=0-599"
    assert pkg["control"]["range"] == "bytes=600-1099"
    assert pkg["data"]["range"] == "bytes=1100-2999"


def test_packages_for_keeps_install_order_and_keyring_loads() -> None:
    assert [p.name for p in LOCK.packages_for("x86_64")] == ["musl", "busybox"]
    assert [p.name for p in LOCK.packages_for("aarch64")] == ["musl"]
    assert LOCK.packages_for("s390x") == []
    assert LOCK.archs == ["x86_64", "aarch64"]
    keyring = LOCK.keyring()
    assert keyring.names == (TEST_KEY.name,)
    assert keyring.pem(TEST_KEY.name) == TEST_KEY.public_pem


def _mutate(edit) -> str:
    doc = json.loads(dump_lockfile(LOCK))
    edit(doc)
    return json.dumps(doc)


def _pkg0(doc):
    return doc["contents"]["packages"][0]


@pytest.mark.parametrize(
    "edit, fragment",
    [
        (lambda d: d.update(version="v2"), "`version` is 'v2', an unsupported lockfile version"),
        (lambda d: d.update(extra=1), "lock.json: has unknown key(s) extra;"),
        (lambda d: d["config"].update(checksum="sha256-xyz"), "`config.checksum` has a malformed value"),
        (
            lambda d: d["config"].update(checksum="sha256-" + "0" * 64),
            "`config.checksum` has a malformed value 'sha256-000",  # hex, as we wrote it before
        ),
        (
            lambda d: _pkg0(d).update(size="3000"),
            "`contents.packages[0].size` must be an integer, got '3000'",
        ),
        (lambda d: _pkg0(d).update(sha256="E" * 64), "`contents.packages[0].sha256` has a malformed value"),
        (
            lambda d: _pkg0(d).update(checksum="sha1-abc"),
            "`contents.packages[0].checksum` has a malformed value",
        ),
        (
            lambda d: _pkg0(d).update(checksum="Q1" + "A" * 27 + "="),
            "`contents.packages[0].checksum` is Q1AAAAAAAAAAAAAAAAAAAAAAAAAAA=, not that of the control member of musl",
        ),
        (
            lambda d: _pkg0(d)["control"].update(checksum="sha1-" + "C" * 40 + "="),
            "`contents.packages[0].control.checksum` has a malformed value",  # base64, but not 20 bytes
        ),
        (
            lambda d: _pkg0(d)["data"].update(range="bytes=1100"),
            "`contents.packages[0].data.range` has a malformed range",
        ),
        (
            lambda d: _pkg0(d)["data"].update(checksum="md5-AAAA"),
            "`contents.packages[0].data.checksum` has a malformed value",
        ),
        (
            lambda d: _pkg0(d).update(size=2999),
            "`contents.packages[0]` has signature/control/data ranges of musl that do not tile its 2999 bytes",
        ),
        (lambda d: _pkg0(d).pop("data"), "`contents.packages[0].data` is required"),
        (
            lambda d: _pkg0(d).pop("size"),
            "`contents.packages[0]` has one of `sha256` and `size` of musl without the other",
        ),
        (
            lambda d: _pkg0(d).update(provides=[""]),
            "`contents.packages[0].provides[0]` must be a non-empty string, got ''",
        ),
        (lambda d: _pkg0(d).update(replaces="x"), "`contents.packages[0].replaces` must be a list"),
        (
            lambda d: d["contents"]["keyring"][0].update(content="not a key"),
            "`contents.keyring[0].content` is not a usable key: not a PEM public key",
        ),
        (
            lambda d: d["contents"]["keyring"][0].update(
                content="# cl\u00e9\n" + d["contents"]["keyring"][0]["content"]
            ),
            "`contents.keyring[0].content` is not a usable key: the PEM key holds non-ASCII bytes",
        ),
        (
            lambda d: d["contents"]["keyring"][0].update(data=d["contents"]["keyring"][0].pop("content")),
            "`contents.keyring[0].data` is the older ocibuild name of the key's PEM; apko names it `content`",
        ),
        (
            lambda d: d["contents"]["keyring"].append(d["contents"]["keyring"][0]),
            "`contents.keyring` names a key twice",
        ),
        (
            lambda d: d["contents"]["packages"].append(copy.deepcopy(_pkg0(d))),
            "`contents.packages` lists musl (x86_64) twice",
        ),
        (
            lambda d: d["contents"]["packages"].insert(1, d["contents"]["packages"].pop(2)),
            "`contents.packages` does not group the packages of x86_64 together",
        ),
        (
            lambda d: d["contents"].update(runtime_repositories=[{"name": "x"}]),
            "`contents.runtime_repositories[0].url` is required",
        ),
    ],
)
def test_strict_validation(edit, fragment: str) -> None:
    with pytest.raises(OciBuildError) as e:
        load_lockfile(_mutate(edit), "images/static/apko.lock.json")
    msg = str(e.value)
    assert msg.startswith("images/static/apko.lock.json: ")
    assert fragment in msg
    assert "re-lock the resolve" in msg and "\n" not in msg


def test_go_nil_lists_read_as_empty() -> None:
    # Go's encoding/json writes a nil slice without omitempty as null
    text = _mutate(lambda d: d["contents"].update(build_repositories=None, runtime_repositories=None))
    assert load_lockfile(text, "lock.json") == LOCK


def test_not_json_and_duplicate_keys() -> None:
    with pytest.raises(OciBuildError, match=r"^lock.json: not valid JSON"):
        load_lockfile("{", "lock.json")
    text = dump_lockfile(LOCK).replace('"version": "v1",', '"version": "v1",\n  "version": "v1",', 1)
    with pytest.raises(OciBuildError, match=r"^lock.json: line 3: duplicate key 'version'"):
        load_lockfile(text, "lock.json")


# ---- apko compatibility: apko's own golden locks, and Go's encoding/json over lock.go's structs ----


def _go_structs() -> Dict[str, List[Tuple[str, str, str, bool]]]:
    """{struct: [(Go field, Go type, JSON name, omitempty)]}, read from apko's pkg/lock/lock.go."""
    text = (APKO_FIXTURES / "lock.go").read_text()
    structs = {}
    for m in re.finditer(r"^type (\w+) struct \{\n(.*?)^\}", text, re.M | re.S):
        fields = []
        for f in re.finditer(r'^\s*(\w+)\s+(\S+)\s+`json:"([^"]*)"`', m.group(2), re.M):
            name, _, options = f.group(3).partition(",")
            fields.append((f.group(1), f.group(2), name, "omitempty" in options.split(",")))
        structs[m.group(1)] = fields
    return structs


GO = _go_structs()


def test_lock_go_declares_what_the_model_reads() -> None:
    # if apko changes its format, the snapshot in fixtures/apko is where to look first
    assert set(GO) == {
        "Lock",
        "Config",
        "LockContents",
        "LockPkg",
        "LockPkgRangeAndChecksum",
        "LockRepo",
        "LockKeyring",
    }
    assert [f[2] for f in GO["LockKeyring"]] == ["name", "url", "content"]
    assert [f[2] for f in GO["LockContents"]] == [
        "keyring",
        "build_repositories",
        "runtime_repositories",
        "repositories",
        "packages",
    ]


class GoTypeError(Exception):
    pass


def go_decode(value: Any, go_type: str, where: str, unknown: List[str]) -> Any:
    """json.Unmarshal into lock.go's types: a type mismatch is an error, unknown keys are skipped
    (listed in `unknown`), absent fields keep Go's zero value."""
    if go_type == "string":
        if value is None:
            return ""
        if not isinstance(value, str):
            raise GoTypeError(f"{where}: cannot unmarshal {type(value).__name__} into string")
        return value
    if go_type.startswith("[]"):
        if value is None:
            return None
        if not isinstance(value, list):
            raise GoTypeError(f"{where}: cannot unmarshal {type(value).__name__} into {go_type}")
        return [go_decode(v, go_type[2:], f"{where}[{i}]", unknown) for i, v in enumerate(value)]
    if go_type.startswith("*"):
        return None if value is None else go_decode(value, go_type[1:], where, unknown)
    fields = GO[go_type]  # a KeyError here: a type the model does not know
    out = {f: _go_zero(t) for f, t, _, _ in fields}
    if value is None:
        return out
    if not isinstance(value, dict):
        raise GoTypeError(f"{where}: cannot unmarshal {type(value).__name__} into {go_type}")
    for key, v in value.items():
        match = [f for f in fields if f[2] == key] or [f for f in fields if f[2].lower() == key.lower()]
        if not match:
            unknown.append(f"{where}.{key}")
            continue
        field, ftype, _, _ = match[0]
        out[field] = go_decode(v, ftype, f"{where}.{key}", unknown)
    return out


def _go_zero(go_type: str) -> Any:
    if go_type == "string":
        return ""
    if go_type.startswith("[]") or go_type.startswith("*"):
        return None
    return go_decode(None, go_type, "", [])


def go_encode(value: Any, go_type: str) -> Any:
    if go_type == "string" or value is None:
        return value
    if go_type.startswith("[]"):
        return [go_encode(v, go_type[2:]) for v in value]
    if go_type.startswith("*"):
        return go_encode(value, go_type[1:])
    out = {}
    for field, ftype, name, omitempty in GO[go_type]:
        v = value[field]
        if omitempty and (v is None or v == "" or v == []):
            continue
        out[name] = go_encode(v, ftype)
    return out


def apko_reads(text: str) -> Tuple[Dict[str, Any], List[str]]:
    """What apko's lock.FromFile gives for this text, and the keys its decoder skipped."""
    unknown: List[str] = []
    return go_decode(json.loads(text), "Lock", "lock", unknown), unknown


def apko_writes(lock: Dict[str, Any]) -> str:
    """lock.SaveToFile: json.MarshalIndent(lock, "", "  ") + "\\n" (Go escapes <, > and & in strings)."""
    text = json.dumps(go_encode(lock, "Lock"), indent=2, ensure_ascii=False)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026") + "\n"


def _without_extras(lock: Lockfile) -> Lockfile:
    return dataclasses.replace(
        lock,
        packages=tuple(
            dataclasses.replace(p, sha256=None, size=None, replaces=None, dependencies=None, provides=None)
            for p in lock.packages
        ),
    )


def test_apko_fixtures_are_present() -> None:
    assert APKO_LOCKS == [
        "apko-discover.lock.json",
        "apko.lock.json",
        "apko.pre-0.13.lock.json",
        "image_on_top.apko.lock.json",
    ]


@pytest.mark.parametrize("name", APKO_LOCKS)
def test_every_apko_lock_loads(name: str) -> None:
    text = (APKO_FIXTURES / name).read_text()
    raw = json.loads(text)
    lock = load_lockfile(text, name)
    assert [(p.name, p.version, p.architecture, p.url) for p in lock.packages] == [
        (p["name"], p["version"], p["architecture"], p["url"]) for p in raw["contents"]["packages"]
    ]
    for pkg, p in zip(lock.packages, raw["contents"]["packages"]):
        assert (pkg.signature.http_range, pkg.signature.checksum) == (
            p["signature"]["range"],
            p["signature"]["checksum"],
        )
        assert (pkg.control.http_range, pkg.control.checksum) == (
            p["control"]["range"],
            p["control"]["checksum"],
        )
        assert (pkg.data.http_range, pkg.data.checksum) == (p["data"]["range"], p["data"]["checksum"])
        # apko's `checksum` (since 0.13), else derived: both are the sha1 of the control member
        assert pkg.checksum == p.get("checksum", "Q1" + p["control"]["checksum"][len("sha1-") :])
        assert (pkg.sha256, pkg.size, pkg.dependencies, pkg.provides, pkg.replaces) == (None,) * 5
    assert [(k.name, k.url) for k in lock.keys] == [(k["name"], k["url"]) for k in raw["contents"]["keyring"]]
    assert [k.pem.decode() if k.pem else None for k in lock.keys] == [
        k.get("content") for k in raw["contents"]["keyring"]
    ]
    assert lock.spec_checksum == raw.get("config", {}).get("checksum")
    assert [r.url for r in lock.repositories] == [r["url"] for r in raw["contents"]["repositories"]]
    # what we write of it reads back the same; for the locks of today's apko, byte for byte
    assert load_lockfile(dump_lockfile(lock), name) == lock
    if "pre-0.13" not in name:
        assert dump_lockfile(lock) == text
        assert apko_writes(apko_reads(text)[0]) == text  # the Go model reproduces apko's own output


def test_apko_key_names_map_to_signature_names() -> None:
    lock = load_lockfile((APKO_FIXTURES / "apko-discover.lock.json").read_text(), "x")
    assert [k.signing_name for k in lock.keys][:3] == [
        "melange.rsa.pub",
        "alpine-devel@lists.alpinelinux.org-6165ee59.rsa.pub",  # from ".../alpine-devel%40lists...", as .SIGN.RSA.<name>
        "alpine-devel@lists.alpinelinux.org-616ae350.rsa.pub",
    ]
    assert "alpine-devel@lists.alpinelinux.org-6165ee59.rsa.pub" in lock.keyring().names


def test_pre_0_13_apko_lock() -> None:
    lock = load_lockfile((APKO_FIXTURES / "apko.pre-0.13.lock.json").read_text(), "old.lock.json")
    assert (lock.spec_name, lock.spec_checksum, lock.matches_spec(b"anything")) == (None, None, None)
    assert lock.keys[0].pem is None
    with pytest.raises(
        OciBuildError, match=r"^lock: key ./testdata/melange.rsa.pub has no `content`.*re-lock the resolve"
    ):
        lock.keyring()


@pytest.fixture(scope="module")
def real_lock() -> Lockfile:
    return alpine_lock(("busybox", "ca-certificates-bundle", "tzdata", "alpine-release"))


def test_apko_reads_our_lock(real_lock: Lockfile) -> None:
    text = dump_lockfile(real_lock)
    decoded, skipped = apko_reads(text)  # no GoTypeError: every apko field has apko's type
    # the only keys apko skips are our documented extras, on packages
    assert {re.sub(r"\[\d+\]", "[]", k) for k in skipped} == {
        f"lock.contents.packages[].{k}" for k in OUR_EXTRAS
    }
    assert decoded["Config"] == {"Name": "alpine-test", "DeepChecksum": real_lock.spec_checksum}
    assert re.fullmatch(r"sha256-[A-Za-z0-9+/]{43}=", decoded["Config"]["DeepChecksum"])  # apko's encoding
    assert (
        decoded["Contents"]["RuntimeOnlyRepositories"] == []
        and decoded["Contents"]["BuildRepositories"] == []
    )
    (key,) = decoded["Contents"]["Keyrings"]
    assert key["Content"].encode() == real_lock.keys[0].pem
    for go_pkg, pkg in zip(decoded["Contents"]["Packages"], real_lock.packages):
        assert go_pkg["Checksum"] == pkg.checksum and go_pkg["Data"]["Range"] == pkg.data.http_range
    # what apko writes back (without our extras) we read as the same lock minus the extras
    written = apko_writes(decoded)
    assert load_lockfile(written, "apko.lock.json") == _without_extras(real_lock)
    assert dump_lockfile(_without_extras(real_lock)) == written


def test_our_lock_reads_back_identically(real_lock: Lockfile) -> None:
    text = dump_lockfile(real_lock)
    assert load_lockfile(text, "x") == real_lock
    assert dump_lockfile(load_lockfile(text, "x")) == text
    assert all(p.provides is not None and p.dependencies is not None for p in real_lock.packages)


# ---- building from a lock apko wrote: verified by the pinned members --------------------------------


def test_layer_from_an_apko_written_lock_is_the_same_layer(real_lock: Lockfile, tmp_path: Path) -> None:
    apko_lock = load_lockfile(apko_writes(apko_reads(dump_lockfile(real_lock))[0]), "apko.lock.json")
    assert all(p.sha256 is None and p.size is None for p in apko_lock.packages)
    options = ApkLayerOptions(arch="x86_64", skip_scripts_of=("busybox",))
    ours = build_apk_layer(real_lock, str(alpine_packages_dir()), options, str(tmp_path / "a.tar.gz"))
    theirs = build_apk_layer(apko_lock, str(alpine_packages_dir()), options, str(tmp_path / "b.tar.gz"))
    assert (tmp_path / "a.tar.gz").read_bytes() == (tmp_path / "b.tar.gz").read_bytes()
    # Same layer; only the .apk sha256 the SBOM records is unknown to an apko lock.
    assert [p.sha256 for p in theirs.packages] == [None] * len(ours.packages)
    assert all(p.sha256 for p in ours.packages)
    without_sha256 = tuple(dataclasses.replace(p, sha256=None) for p in ours.packages)
    assert dataclasses.replace(ours, packages=without_sha256) == theirs
    # a subset layer needs the closure, which an apko lock cannot give
    with pytest.raises(OciBuildError, match=r"no recorded dependencies/provides .*re-lock the resolve"):
        assemble_root(
            apko_lock, str(alpine_packages_dir()), ApkLayerOptions(arch="x86_64", packages=("busybox",))
        )


def test_apko_written_lock_still_pins_every_byte(real_lock: Lockfile, tmp_path: Path) -> None:
    apko_lock = _without_extras(real_lock)
    tzdata = next(p for p in apko_lock.packages if p.name == "tzdata")
    data = (alpine_packages_dir() / tzdata.filename).read_bytes()
    (tmp_path / tzdata.filename).write_bytes(data + b"\0")  # one byte more: no size in the lock to catch it
    lock = dataclasses.replace(apko_lock, packages=(tzdata,))
    with pytest.raises(OciBuildError, match=r"size is \d+ bytes but its pinned members end at byte"):
        assemble_root(lock, str(tmp_path), ApkLayerOptions(arch="x86_64"))


# ---- the closure of a subset layer, from the lock alone ---------------------------------------------


def test_select_packages_from_the_lock_alone(real_lock: Lockfile) -> None:
    locked = real_lock.packages_for("x86_64")
    index = alpine_packages_dir() / "APKINDEX.tar.gz"

    def names(wanted):
        return [p.name for p in select_packages(locked, wanted, "x86_64")]

    # busybox needs so:libc.musl-x86_64.so.1, which only musl's recorded `provides` names
    assert names(["busybox"]) == [n for n in [p.name for p in locked] if n in {"musl", "busybox"}]
    assert set(names(["busybox"])) == set(expected_install_order(index, ["busybox"]))
    assert set(names(["alpine-release"])) == set(expected_install_order(index, ["alpine-release"]))
    assert names(["ca-certificates-bundle"]) == ["ca-certificates-bundle"]
    assert names([]) == [p.name for p in locked]
    without_provides = [dataclasses.replace(p, provides=()) for p in locked]
    with pytest.raises(OciBuildError, match=r"busybox depends on so:libc.musl-x86_64.so.1, which no package"):
        select_packages(without_provides, ["busybox"], "x86_64")
    with pytest.raises(OciBuildError, match=r"^package nano is not in the lock for x86_64"):
        select_packages(locked, ["nano"], "x86_64")


def test_subset_lock_holds_only_the_closure(real_lock: Lockfile) -> None:
    closure = select_packages(real_lock.packages_for("x86_64"), ["busybox"], "x86_64")
    subset = real_lock.subset("x86_64", closure)
    assert [p.name for p in subset.packages] == [p.name for p in closure]
    assert subset.keys == real_lock.keys and subset.spec_checksum is None and subset.repositories == ()
    # the closure of the subset is itself: a layer built from it installs the same packages
    assert select_packages(subset.packages_for("x86_64"), ["busybox"], "x86_64") == closure
    assert load_lockfile(dump_lockfile(subset), "x") == subset
