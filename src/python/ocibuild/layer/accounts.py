"""Users and groups of an image, in apko's `accounts` format, merged into /etc/passwd and /etc/group.

    {"users":  [{"username": "nonroot", "uid": 65532, "gid": 65532, "home": "/home/nonroot", "shell": "/bin/sh"}],
     "groups": [{"groupname": "nonroot", "gid": 65532, "members": ["nonroot"]}]}

Defaults follow apko: gid = uid, home = /home/<username>, shell = /bin/sh. Lines the packages
shipped are kept as they are; an account of the same name is replaced by ours (the config is the
user's explicit wish); a different name already holding the same uid/gid is an error.
/etc/shadow is not touched: accounts get no password (login disabled).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Sequence, Tuple

from ocibuild.errors import OciBuildError
from ocibuild.strictload import load_json

__all__ = [
    "MAX_ID",
    "User",
    "Group",
    "Accounts",
    "parse_accounts",
    "load_accounts",
    "merge_passwd",
    "merge_group",
]

_GECOS = "Account created by ocibuild"
MAX_ID = 2**32 - 2  # (uid_t)-1 is "no user"


@dataclass(frozen=True)
class User:
    username: str
    uid: int
    gid: int
    home: str
    shell: str

    def passwd_line(self) -> str:
        return f"{self.username}:x:{self.uid}:{self.gid}:{_GECOS}:{self.home}:{self.shell}"


@dataclass(frozen=True)
class Group:
    groupname: str
    gid: int
    members: Tuple[str, ...] = ()

    def group_line(self) -> str:
        return f"{self.groupname}:x:{self.gid}:{','.join(self.members)}"


@dataclass(frozen=True)
class Accounts:
    users: Tuple[User, ...] = ()
    groups: Tuple[Group, ...] = ()


def _check_keys(
    obj: Any, allowed: Sequence[str], required: Sequence[str], where: str, origin: str
) -> Dict[str, Any]:
    if not isinstance(obj, dict):
        raise OciBuildError(f"{origin}: {where} must be an object")
    unknown = sorted(set(obj) - set(allowed))
    if unknown:
        raise OciBuildError(f"{origin}: {where}: unknown key {unknown[0]!r} (allowed: {', '.join(allowed)})")
    missing = [k for k in required if k not in obj]
    if missing:
        raise OciBuildError(f"{origin}: {where}: missing key {missing[0]!r}")
    return obj


def _name(value: Any, where: str, origin: str) -> str:
    if (
        not isinstance(value, str)
        or not value
        or any(c in value for c in ":,\n\r\t /")
        or value.startswith("-")
    ):
        raise OciBuildError(f"{origin}: {where}: {value!r} is not a valid account name")
    return value


def _id(value: Any, where: str, origin: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_ID:
        raise OciBuildError(f"{origin}: {where}: {value!r} is not a valid numeric id")
    return value


def _field(value: Any, where: str, origin: str, absolute: bool) -> str:
    if not isinstance(value, str) or not value or any(c in value for c in ":\n\r"):
        raise OciBuildError(f"{origin}: {where}: {value!r} is not valid in /etc/passwd")
    if absolute and not value.startswith("/"):
        raise OciBuildError(f"{origin}: {where}: {value!r} must be an absolute path")
    return value


def _list(top: Dict[str, Any], key: str, origin: str) -> List[Any]:
    value = top.get(key, [])
    if not isinstance(value, list):
        raise OciBuildError(f"{origin}: {key} must be a list of objects, got {value!r}")
    return value


def parse_accounts(data: Any, origin: str) -> Accounts:
    """Validate the decoded JSON (strictly: unknown keys and duplicates are errors)."""
    top = _check_keys(data, ("users", "groups"), (), "accounts", origin)
    users: List[User] = []
    for i, raw in enumerate(_list(top, "users", origin)):
        where = f"users[{i}]"
        u = _check_keys(raw, ("username", "uid", "gid", "home", "shell"), ("username", "uid"), where, origin)
        name = _name(u["username"], where + ".username", origin)
        uid = _id(u["uid"], where + ".uid", origin)
        gid = _id(u.get("gid", uid), where + ".gid", origin)
        home = _field(u.get("home", f"/home/{name}"), where + ".home", origin, absolute=True)
        shell = _field(u.get("shell", "/bin/sh"), where + ".shell", origin, absolute=True)
        users.append(User(name, uid, gid, home, shell))
    groups: List[Group] = []
    for i, raw in enumerate(_list(top, "groups", origin)):
        where = f"groups[{i}]"
        g = _check_keys(raw, ("groupname", "gid", "members"), ("groupname", "gid"), where, origin)
        members = g.get("members", [])
        if not isinstance(members, list):
            raise OciBuildError(f"{origin}: {where}.members must be a list of user names")
        groups.append(
            Group(
                _name(g["groupname"], where + ".groupname", origin),
                _id(g["gid"], where + ".gid", origin),
                tuple(_name(m, f"{where}.members", origin) for m in members),
            )
        )
    _no_duplicates([(u.username, u.uid) for u in users], "user", origin)
    _no_duplicates([(g.groupname, g.gid) for g in groups], "group", origin)
    return Accounts(tuple(users), tuple(groups))


def _no_duplicates(pairs: List[Tuple[str, int]], what: str, origin: str) -> None:
    names, ids = set(), set()
    for name, num in pairs:
        if name in names:
            raise OciBuildError(f"{origin}: {what} {name} is listed twice")
        if num in ids:
            raise OciBuildError(f"{origin}: {what} {name}: id {num} is used by another {what} of the file")
        names.add(name)
        ids.add(num)


def load_accounts(text: str, origin: str) -> Accounts:
    return parse_accounts(load_json(text, origin), origin)  # a duplicate key is an error naming it


def _merge(existing: Optional[bytes], entries: List[Tuple[str, int, str]], path: str, what: str) -> bytes:
    """Replace lines of the same name, append new ones; refuse an id held by another name."""
    lines = existing.decode("utf-8", "surrogateescape").splitlines() if existing else []
    index: Dict[str, int] = {}
    for n, line in enumerate(lines):
        fields = line.split(":")
        if len(fields) >= 3 and not line.startswith("#"):
            index[fields[0]] = n
    for name, num, new_line in entries:
        for n, line in enumerate(lines):
            fields = line.split(":")
            if len(fields) >= 3 and fields[0] != name and fields[2] == str(num) and not line.startswith("#"):
                raise OciBuildError(
                    f"accounts: {what} {name}: id {num} is already used by {fields[0]!r} in /{path}; pick another id"
                )
        if name in index:
            lines[index[name]] = new_line
        else:
            index[name] = len(lines)
            lines.append(new_line)
    return ("\n".join(lines) + "\n").encode("utf-8", "surrogateescape")


def merge_passwd(existing: Optional[bytes], users: Sequence[User]) -> bytes:
    return _merge(existing, [(u.username, u.uid, u.passwd_line()) for u in users], "etc/passwd", "user")


def merge_group(existing: Optional[bytes], groups: Sequence[Group]) -> bytes:
    return _merge(existing, [(g.groupname, g.gid, g.group_line()) for g in groups], "etc/group", "group")
