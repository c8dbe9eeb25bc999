"""Build genuine-format `.apk` packages and signed `APKINDEX.tar.gz` files for tests.

The output follows what Alpine's abuild produces (see ../shared/apk-mirror/README.md): concatenated gzip
members for the signature (`.SIGN.RSA.<key>`, end-of-archive blocks cut), the control tar (`.PKGINFO` with
the data member's `datahash`, install scripts; blocks cut) and the data tar (PAX records `ctime`, `atime`,
`APK-TOOLS.checksum.SHA1`). Output is deterministic: fixed keys, mtimes and gzip headers.

On purpose this module does NOT import `ocibuild.apk`: tests check the parser against a producer written
independently (stdlib + `cryptography` only).

Typical use::

    apk = build_apk("hello", "1.0-r0", files=[directory("usr"), directory("usr/bin"),
                    reg_file("usr/bin/hello", b"#!/bin/sh\\n", mode=0o755)], depends=["musl"])
    index = build_index([apk])               # signed with TEST_KEY, C:/S: computed from the bytes
    repo = write_repository(tmp_path / "main" / "x86_64", [apk])
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import io
import tarfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Iterable, List, Mapping, Optional, Sequence, Tuple, TypedDict, Union

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from testutil.tars import member_bytes

DEFAULT_BUILDDATE = 1700000000

# Fixed throw-away 2048-bit keys, ONLY for tests (a fixed key keeps fixture bytes identical across runs).
_TEST_PRIVATE_PEM = b"""\
-----BEGIN RSA PRIVATE KEY-----
MIIEpAIBAAKCAQEAzkEh8b/iNYFoVzWvyeGuMgU69qKngkpji+90rCzRlJ+st+lT
CbMOBNhkHaLBhdh67V8Vgi2E07LmoSzgIm5BFwpU1yrqDc2ca1WYns2ewqnBy59d
RoEse8GmHplZFgKY94lKrgO8jtmLqOHLTMdprcChyVxjTn4M1dJ0NQlseZdk0HVm
x3uH0QTLrhmXW7sn4N5OERRBqHqQO61zgCg7vHJuC/MM+nTw+reg622ghdp1l5UI
VjRrXg9Cpv+V65I/wxzYDZURs8eIQs3EIsXf0vzH4OamVVUjHsTffeNH7za8QHVk
QL6EW5vejRQEb4MS/YJo4jvE5WwpBDHGMSlHqwIDAQABAoIBAAMLxcWPfptNrmAV
n5pDytISk7Ohm5mxIYynExWZkiGlVy2C/ebOVyUW403nmLYNvxsA5OiQ0z3H+9+r
ev2eCcqeUSfeCoVqhYHaAVUl6Rh03aDQomgnb1ri0M/yBBoTilDH1CJenlQeUFqy
R4h6UN6CLaF8pxbLhgwlNIQjbaH3wTA29lM8yHVorlcg642L7tEdXIP51h49iBpo
WaGMgrP0Ygi/mB5hFqKQ/1GxNgUpFew0uYFuo69YsuVnmss0whkeSw5rwqiUJ5T2
O3mTz+i/vG5UU/Qgp26SsHGhOFi5a8YIL8qYbAz8sVREraIhDDqbqXDyDj2jWwbx
eoOOLMECgYEA6sVgX+dukDmhWbkIgimpS5DX+x+snN9LD5vsr2KAujX1l2JRCgV9
hAxpyVkyH21oGIQhesCdDDgtsxQIOCjr5lxF8QPZtyX05UgT/Z58lPrZx0Uqa3QM
mTn2MfweO8975BORX9o38C6zHSwGl1+tI2MP5oAYkYDT7mvAoedj/OECgYEA4Oej
CPA7ct+/3EMGn++DdmQnv8DBvQYwboplurvdUnjcqq7LYnL3O5keTMCH+805gu+c
NiTWXiGpMhBvNWrNc+we1q0+EntlFyP2J8Cq/dbVHZxT+qys+hiKxZsGKKrEpoSj
5z/jxu1YcVIprZ0M+JL07viB9NzSsl+hFafwqgsCgYEA3m0v2M0AYF5pcwMuf3uP
LMvHBOJGfL3FdL1qqeOuSD3VN57rXo5DE7dbBmueZE4YgJm2yoDwieIz0eVZwDNt
BGxJy4W1YKLyecQnRHNCXzem2ve5r+JcCVPz3/mYf1wdacHsSp8JvmHQSwQqHoKE
G/G/38de/4PJxqqJ8Bq1DaECgYEAkuUYan0mBxi3YrDwgcPZlJlEEQ1gPQru1TRV
z4pmuzgvwNecBbhbXLTcwnq6Fq/rUWcZG5Ah56eKsCVlzXjtqjpdxg+vTDkGRP/7
BenkhRktZ0K04zSnYk5nTTu84RDwkmZt+1uSdVqOeq2UhU3fq/eoPPFZSEp234Rw
XQmsuhMCgYAbU8Xt1aXuecWy73dmVku9MTMhTS9ITuvytqwhASF+Y0icerY8osHd
460F/vy5KbQb8fo/XXTuuIfc/QpIt85Tw8ptKuLwaXPMnRVB/aW+C9djykyfcjhn
xz8Kz7UIZqJNswESVP0M2W1YVca72vFP1VlyQ/FqUpKKHRA5kH4Yxg==
-----END RSA PRIVATE KEY-----
"""

_OTHER_PRIVATE_PEM = b"""\
-----BEGIN RSA PRIVATE KEY-----
MIIEowIBAAKCAQEA7zurBv7NO/VjRi44scZ/KTcgdH+7/I2n8HAAXXbbwG2seXMp
CBXI4v1XcTJSWQ+sOREI3AC8qZJVZA1ciX3PqdaXj1vJ2YVjn3VaiTDcJnZGw+mq
bKZXm7+O0MOlM2sl1LXXxAhMS/WmAUkuOtMFkJkCwNzuQKLSkom1jAU/R8FAATrU
hzMsKQZA9EvGCj9fNY5CTWsfSrIegRq5Hzw8dGC+yRPTrmXuFJ/4kWX4xxeCycj6
ttl1mVfJardXBCjotG0BZj4vLw42hO1G9ClCsXuR08IHQmolMMwHthNFx1SrDo9t
3mOGynmZNi9RgiW72TGzmPqM7OWmYkS32anxoQIDAQABAoIBAFVnU7L3m4TgIUSY
k5zDY/nuuCNexlluqJlpIng7Sk/z1zK0Ld25CTIfhuveLw+kTLNCpYsEqFVQ7DL/
oh1jUJMtDIYdGn4Q5HO0jVGUo8MHTlP6QuDusS/kvrNAZOVqRuMc154f6DzlwRGM
cniFhOMN/LGlLVjdx5aQmsMVzHVskwbinlUYq70y8DWH2GQc/uqCeegkCduxibo1
krQCUEhLW2dupMGzVCVf7AlnKa+T6niRi0QE91sPTZ8Y/Ev+cq0fcrpYlF+3ttKc
2RqUy0J1CnvGcb3g+hKi1PG4D7U5szuNVsav56Prnvuq5RJ6YiuuhBQwMj/lS9Ze
62ZYcpECgYEA/7bwd7O1vY5We9u5PC2xeP3tVbh8ywDVHps5swphC4tDO8Yilg/Q
XrVSCapNP8hLplcVxNPqJvOrzh787KbQRxVfeO+w09DL1gy4S5yadLftJMkhlVDO
A1v1Nufjv4ZvCXH3y00H2Q+wrxXxYh1opOqpjbPGxUW5RhAuypeMov8CgYEA74AF
EHQsft2ULjjUNqihTJiw8FEzSTfWYAP/yGUSd5FR/jtstWi/md5zQIQO10vxLEag
FespIb2grpZ0p9ki5gkfp5s8yzFO9Er/gA2oCebR/mL8CQcoaN8SK3ytpg8Sy4cj
wVYne0RP/r+gAvFfJ+9bHPsVVZeYyvzAVzUHi18CgYAn92zAGLtoBA4qT5409KNP
WMi2ZB5FED0/Cl3LSO0AA+UfO4l+ULxtgQNwdUiblm+UcPn7CHAJZH5OufMn/a6B
3apNWZEWmgSx0M0hLDnL0k9jN3hjQPzh84Zw7W9gKN/D5ycmhEScvWINC23tutD3
LaIQfq+rd4lMlQzrJyKY+wKBgDjJPuom0YIHIaJQASkwlIYn0hQ4/JMItUCw0g3+
wQEuqKVCC8V7n6ppDySl6yrrK7TWzhBEYM1KO/YJYIGHv3mRgjroWOLIvzK3MZt4
IXavjuzlJWMymkc7VQCQoE+2VTuCwFyQA+57RQhfAR6RgoFihFT7x5QyzJycjzJe
NXq7AoGBANx+/ORm0MXBx+2UL18HCru079dK9cmsQetwDbmZrCiJGcvo6pGufgIg
znUNbgxa4SaNTDNzVrNJOQO8s1Wnr88nSqFoO3IuW5MQwHYfMX74d6Nm7RGboPOu
cg/5iOLChyF2/bb6i2x2ebuq44SkPOwv/1vBiRUJC/7eVAsyu30r
-----END RSA PRIVATE KEY-----
"""


@dataclass(frozen=True)
class TestKey:
    """An RSA signing key, named like Alpine's key files (the name is what signatures refer to)."""

    __test__ = False  # not a pytest test class

    name: str
    private_pem: bytes

    @classmethod
    def generate(cls, name: str) -> "TestKey":
        """A fresh random key (output signed with it differs between runs)."""
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.NoEncryption(),
        )
        return cls(name, pem)

    def _private_key(self) -> rsa.RSAPrivateKey:
        key = serialization.load_pem_private_key(self.private_pem, password=None)
        if not isinstance(key, rsa.RSAPrivateKey):
            raise TypeError(f"test key {self.name!r} is not an RSA key (apk signs with RSA only)")
        return key

    @property
    def public_pem(self) -> bytes:
        return (
            self._private_key()
            .public_key()
            .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        )

    def sign(self, control_member: bytes, algorithm: str = "sha1") -> bytes:
        """RSA PKCS#1 v1.5 signature over the raw (compressed) control member, as abuild-sign makes."""
        digest = {"sha1": hashes.SHA1(), "sha256": hashes.SHA256()}[algorithm]
        return self._private_key().sign(control_member, padding.PKCS1v15(), digest)

    def signature_file_name(self, algorithm: str = "sha1") -> str:
        return {"sha1": ".SIGN.RSA.", "sha256": ".SIGN.RSA256."}[algorithm] + self.name


TEST_KEY = TestKey("test@example.com-0000.rsa.pub", _TEST_PRIVATE_PEM)
OTHER_KEY = TestKey("other@example.com-1111.rsa.pub", _OTHER_PRIVATE_PEM)


def keyring_pems(*keys: TestKey) -> Dict[str, bytes]:
    """`{key name: public PEM}`, the input of `Keyring.from_pems`."""
    return {k.name: k.public_pem for k in (keys or (TEST_KEY,))}


def write_keys(directory: Path, *keys: TestKey) -> Path:
    """Write public keys as `<directory>/<key name>` (a keyring folder like /etc/apk/keys)."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    for name, pem in keyring_pems(*keys).items():
        (directory / name).write_bytes(pem)
    return directory


# ---------------------------------------------------------------------------------------------- entries


@dataclass(frozen=True)
class Entry:
    """One entry of a package's data tar."""

    path: str
    content: Optional[bytes] = None  # None and no link: a directory
    mode: Optional[int] = None  # default 0o644 for files, 0o755 for directories, 0o777 for symlinks
    uid: int = 0
    gid: int = 0
    uname: str = "root"
    gname: str = "root"
    symlink: Optional[str] = None  # target of a symbolic link
    hardlink: Optional[str] = None  # path (in the package) of the hard link's target
    pax: Tuple[Tuple[str, str], ...] = ()  # extra PAX records, e.g. (("SCHILY.xattr.user.x", "1"),)

    @property
    def kind(self) -> str:
        if self.symlink is not None:
            return "symlink"
        if self.hardlink is not None:
            return "hardlink"
        return "dir" if self.content is None else "file"


def reg_file(path: str, content: bytes, mode: int = 0o644, **kw) -> Entry:
    return Entry(path, content, mode, **kw)


def directory(path: str, mode: int = 0o755, **kw) -> Entry:
    return Entry(path, None, mode, **kw)


def symlink(path: str, target: str, **kw) -> Entry:
    return Entry(path, symlink=target, **kw)


def hardlink(path: str, target: str, **kw) -> Entry:
    return Entry(path, hardlink=target, **kw)


EntryLike = Union[Entry, Tuple]


def _as_entry(item: EntryLike) -> Entry:
    """Accept `Entry` or a tuple `(path, content_or_None[, mode])`."""
    if isinstance(item, Entry):
        return item
    path, content, *rest = item
    return Entry(path, content, rest[0] if rest else None)


def _norm(path: str) -> str:
    return path.strip("/")


def _with_parent_dirs(entries: List[Entry]) -> List[Entry]:
    """Add missing parent directory entries (0755 root) before their first child, as real packages have."""
    seen = {_norm(e.path) for e in entries if e.kind == "dir"}
    out: List[Entry] = []
    for e in entries:
        parts = _norm(e.path).split("/")[:-1]
        for i in range(1, len(parts) + 1):
            parent = "/".join(parts[:i])
            if parent not in seen:
                seen.add(parent)
                out.append(directory(parent))
        out.append(e)
    return out


# ---------------------------------------------------------------------------------------------- tars


def _tarinfo(e: Entry, mtime: int) -> Tuple[tarfile.TarInfo, Optional[bytes]]:
    info = tarfile.TarInfo(_norm(e.path))
    info.uid, info.gid, info.uname, info.gname, info.mtime = e.uid, e.gid, e.uname, e.gname, mtime
    pax = {"ctime": "0", "atime": "0"}
    data = None
    # The same order as Entry.kind, spelled out so the type checker sees which field is set.
    if e.symlink is not None:
        info.type, info.mode, info.linkname = tarfile.SYMTYPE, 0o777 if e.mode is None else e.mode, e.symlink
        pax["APK-TOOLS.checksum.SHA1"] = hashlib.sha1(e.symlink.encode()).hexdigest()
    elif e.hardlink is not None:
        info.type, info.mode, info.linkname = (
            tarfile.LNKTYPE,
            0o644 if e.mode is None else e.mode,
            _norm(e.hardlink),
        )
    elif e.content is None:
        info.type, info.mode = tarfile.DIRTYPE, 0o755 if e.mode is None else e.mode
    else:
        info.type, info.mode, info.size = tarfile.REGTYPE, 0o644 if e.mode is None else e.mode, len(e.content)
        pax["APK-TOOLS.checksum.SHA1"] = hashlib.sha1(e.content).hexdigest()
        data = e.content
    pax.update(dict(e.pax))
    info.pax_headers = pax
    return info, data


def _tar(
    members: Sequence[Tuple[tarfile.TarInfo, Optional[bytes]]], cut: bool, fmt=tarfile.PAX_FORMAT
) -> bytes:
    """A tar stream; `cut` drops the end-of-archive blocks (abuild-tar --cut) as signature/control tars do."""
    buf = io.BytesIO()
    tar = tarfile.open(fileobj=buf, mode="w", format=fmt, encoding="utf-8")
    for info, data in members:
        tar.addfile(info, io.BytesIO(data) if data is not None else None)
    body = buf.getvalue()
    tar.close()
    return body if cut else buf.getvalue()


def _gzip(data: bytes) -> bytes:
    return gzip.compress(data, compresslevel=9, mtime=0)


def _plain_info(name: str, data: bytes, mode: int, mtime: int) -> Tuple[tarfile.TarInfo, bytes]:
    info = tarfile.TarInfo(name)
    info.size, info.mode, info.mtime, info.uname, info.gname = len(data), mode, mtime, "root", "root"
    return info, data


def signature_member(
    control_member: bytes, key: TestKey, algorithm: str = "sha1", mtime: int = DEFAULT_BUILDDATE
) -> bytes:
    """The gzip member holding `.SIGN.RSA[256].<key>` over `control_member` (ustar, blocks cut)."""
    info, data = _plain_info(
        key.signature_file_name(algorithm), key.sign(control_member, algorithm), 0o644, mtime
    )
    info.uname = info.gname = ""
    return _gzip(_tar([(info, data)], cut=True, fmt=tarfile.USTAR_FORMAT))


# ---------------------------------------------------------------------------------------------- packages


def _install_size(entries: Sequence[Entry]) -> int:
    blocks = sum(-(-len(e.content) // 4096) for e in entries if e.kind == "file" and e.content is not None)
    return max(1, blocks) * 4096


def build_apk(
    name: str,
    version: str,
    arch: str = "x86_64",
    files: Iterable[EntryLike] = (),
    depends: Sequence[str] = (),
    provides: Sequence[str] = (),
    replaces: Sequence[str] = (),
    install_if: Sequence[str] = (),
    triggers: Sequence[str] = (),
    scripts: Optional[Mapping[str, bytes]] = None,
    key: Optional[TestKey] = TEST_KEY,
    builddate: int = DEFAULT_BUILDDATE,
    extra_pkginfo: Sequence[Tuple[str, str]] = (),
    *,
    description: Optional[str] = None,
    url: Optional[str] = None,
    license: str = "MIT",
    origin: Optional[str] = None,
    commit: Optional[str] = None,
    maintainer: str = "Test <test@example.com>",
    provider_priority: Optional[int] = None,
    installed_size: Optional[int] = None,
    add_parent_dirs: bool = True,
    signature_algorithm: str = "sha1",
    datahash: Optional[str] = None,
) -> bytes:
    """A real `.apk`: signature (unless `key` is None) + control (.PKGINFO, scripts) + data members.

    `scripts` maps ".pre-install"/".post-install"/".trigger"/... (leading dot optional) to contents.
    `datahash` overrides the (correct) one in .PKGINFO, to make a validly signed but inconsistent package.
    """
    entries = [_as_entry(f) for f in files]
    if add_parent_dirs:
        entries = _with_parent_dirs(entries)
    data_member = _gzip(_tar([_tarinfo(e, builddate) for e in entries], cut=False))

    lines = [
        "# Generated by ocibuild tests (tests/testutil/apkbuild.py)",
        f"pkgname = {name}",
        f"pkgver = {version}",
        f"pkgdesc = {description if description is not None else name + ' test package'}",
        f"url = {url if url is not None else 'https://example.com/' + name}",
        f"builddate = {builddate}",
        "packager = Test <test@example.com>",
        f"size = {installed_size if installed_size is not None else _install_size(entries)}",
        f"arch = {arch}",
        f"origin = {origin or name}",
        f"commit = {commit or hashlib.sha1(f'{name}-{version}'.encode()).hexdigest()}",
        f"maintainer = {maintainer}",
    ]
    if provider_priority is not None:
        lines.append(f"provider_priority = {provider_priority}")
    lines.append(f"license = {license}")
    lines += [f"replaces = {r}" for r in replaces]
    if triggers:
        lines.append("triggers = " + " ".join(triggers))
    lines += [f"provides = {p}" for p in provides]
    lines += [f"depend = {d}" for d in depends]
    if install_if:
        lines.append("install_if = " + " ".join(install_if))
    lines += [f"{k} = {v}" for k, v in extra_pkginfo]
    lines.append(f"datahash = {datahash or hashlib.sha256(data_member).hexdigest()}")
    pkginfo = ("\n".join(lines) + "\n").encode()

    control = [_plain_info(".PKGINFO", pkginfo, 0o644, builddate)]
    for script, body in sorted((scripts or {}).items()):
        control.append(_plain_info("." + script.lstrip("."), body, 0o755, builddate))
    for info, _ in control:
        info.pax_headers = {"ctime": "0", "atime": "0"}
    control_member = _gzip(_tar(control, cut=True))

    signature = signature_member(control_member, key, signature_algorithm, builddate) if key else b""
    return signature + control_member + data_member


# ---------------------------------------------------------------------------------------------- reading back


def split_members(data: bytes) -> List[bytes]:
    """The raw gzip members of an apk/index (independent of ocibuild.apk.archive)."""
    members, offset = [], 0
    while offset < len(data):
        d = zlib.decompressobj(31)
        d.decompress(data[offset:])
        if not d.eof:
            raise ValueError("truncated gzip member")
        end = len(data) - len(d.unused_data)
        members.append(data[offset:end])
        offset = end
    return members


def _tar_files(member: bytes) -> Dict[str, bytes]:
    with tarfile.open(fileobj=io.BytesIO(gzip.decompress(member)), mode="r:") as tar:
        return {m.name: member_bytes(tar, m) for m in tar.getmembers() if m.isfile()}


class PackageParts(TypedDict):
    signature: Optional[bytes]
    control: bytes
    data: Optional[bytes]


def package_parts(apk: bytes) -> PackageParts:
    """`{"signature": member or None, "control": member, "data": member or None}` of an apk or index."""
    members = split_members(apk)
    signature = members.pop(0) if all(n.startswith(".SIGN.") for n in _tar_files(members[0])) else None
    return {"signature": signature, "control": members[0], "data": members[1] if len(members) > 1 else None}


def pkginfo_of(apk: bytes) -> Dict[str, List[str]]:
    """`.PKGINFO` as `{key: [values in order]}` (space-separated lists are kept as one value)."""
    text = _tar_files(package_parts(apk)["control"])[".PKGINFO"].decode()
    out: Dict[str, List[str]] = {}
    for line in text.splitlines():
        if line and not line.startswith("#") and " = " in line:
            k, v = line.split(" = ", 1)
            out.setdefault(k, []).append(v)
    return out


def apk_filename(apk: bytes) -> str:
    info = pkginfo_of(apk)
    return f"{info['pkgname'][0]}-{info['pkgver'][0]}.apk"


def q1(control_member: bytes) -> str:
    return "Q1" + base64.b64encode(hashlib.sha1(control_member).digest()).decode()


# ---------------------------------------------------------------------------------------------- indexes


def index_entry_text(apk: bytes) -> str:
    """The APKINDEX block for one package, in apk-tools' field order (no trailing blank line)."""
    info = pkginfo_of(apk)

    def one(key: str, default: str = "") -> str:
        return info.get(key, [default])[0]

    def many(key: str) -> str:
        return " ".join(" ".join(info.get(key, [])).split())

    fields = [
        ("C", q1(package_parts(apk)["control"])),
        ("P", one("pkgname")),
        ("V", one("pkgver")),
        ("A", one("arch")),
        ("S", str(len(apk))),
        ("I", one("size", "0")),
        ("T", one("pkgdesc")),
        ("U", one("url")),
        ("L", one("license")),
        ("o", one("origin")),
        ("m", one("maintainer")),
        ("t", one("builddate")),
        ("c", one("commit")),
        ("k", one("provider_priority")),
        ("D", many("depend")),
        ("p", many("provides")),
        ("i", many("install_if")),
    ]
    return "\n".join(f"{k}:{v}" for k, v in fields if v)


def build_index(
    apks: Sequence[bytes],
    key: Optional[TestKey] = TEST_KEY,
    description: str = "test",
    *,
    signature_algorithm: str = "sha1",
    mtime: int = DEFAULT_BUILDDATE,
    apkindex_text: Optional[str] = None,
) -> bytes:
    """A signed APKINDEX.tar.gz listing `apks` (C:/S: computed from their bytes); `key=None`: unsigned.

    `apkindex_text` replaces the generated APKINDEX text (for malformed-index tests).
    """
    text = apkindex_text if apkindex_text is not None else "".join(index_entry_text(a) + "\n\n" for a in apks)
    members = [
        _plain_info("DESCRIPTION", description.encode(), 0o644, mtime),
        _plain_info("APKINDEX", text.encode(), 0o644, mtime),
    ]
    # Real indexes keep the end-of-archive blocks but no record padding.
    control_member = _gzip(_tar(members, cut=True, fmt=tarfile.USTAR_FORMAT) + b"\0" * 1024)
    signature = signature_member(control_member, key, signature_algorithm, mtime) if key else b""
    return signature + control_member


def write_repository(
    directory: Path, apks: Sequence[bytes], key: Optional[TestKey] = TEST_KEY, description: str = "test"
) -> Path:
    """Write `<directory>/APKINDEX.tar.gz` and each `<name>-<version>.apk` (a repo's `<arch>/` folder)."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    for apk in apks:
        (directory / apk_filename(apk)).write_bytes(apk)
    (directory / "APKINDEX.tar.gz").write_bytes(build_index(apks, key, description))
    return directory
