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

from ocibuild.common.validate import decode, first_problem
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


# ---- the file as written: apko's keys, checked by the core's validator ----------------------------


def _name_problem(value: str) -> Optional[str]:
    if not value or any(c in value for c in ":,\n\r\t /") or value.startswith("-"):
        return f"{value!r} is not a valid account name"
    return None


def _id_problem(value: int) -> Optional[str]:
    return None if 0 <= value <= MAX_ID else f"{value!r} is not a valid numeric id"


def _path_problem(value: str) -> Optional[str]:
    if not value or any(c in value for c in ":\n\r"):
        return f"{value!r} is not valid in /etc/passwd"
    return None if value.startswith("/") else f"{value!r} must be an absolute path"


@dataclass(frozen=True)
class _UserJson:
    username: str
    uid: int
    gid: Optional[int] = None  # None: the uid
    home: Optional[str] = None  # None: /home/<username>
    shell: Optional[str] = None  # None: /bin/sh

    def invalid_reason(self) -> Optional[Tuple[str, str]]:
        checks = [("username", _name_problem(self.username)), ("uid", _id_problem(self.uid))]
        if self.gid is not None:
            checks.append(("gid", _id_problem(self.gid)))
        checks += [
            (key, _path_problem(v))
            for key, v in (("home", self.home), ("shell", self.shell))
            if v is not None
        ]
        return first_problem(checks)

    def user(self) -> User:
        return User(
            self.username,
            self.uid,
            self.uid if self.gid is None else self.gid,
            self.home if self.home is not None else f"/home/{self.username}",
            self.shell if self.shell is not None else "/bin/sh",
        )


@dataclass(frozen=True)
class _GroupJson:
    groupname: str
    gid: int
    members: Tuple[str, ...] = ()

    def invalid_reason(self) -> Optional[Tuple[str, str]]:
        checks = [("groupname", _name_problem(self.groupname)), ("gid", _id_problem(self.gid))]
        checks += [(f"members[{i}]", _name_problem(m)) for i, m in enumerate(self.members)]
        return first_problem(checks)


@dataclass(frozen=True)
class _AccountsJson:
    users: Tuple[_UserJson, ...] = ()
    groups: Tuple[_GroupJson, ...] = ()


def parse_accounts(data: Any, origin: str) -> Accounts:
    """Validate the decoded JSON (strictly: unknown keys and duplicates are errors)."""
    doc = decode(_AccountsJson, data, origin)
    users = [u.user() for u in doc.users]
    groups = [Group(g.groupname, g.gid, g.members) for g in doc.groups]
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
