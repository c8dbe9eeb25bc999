"""apko-style accounts merged into /etc/passwd and /etc/group (ocibuild.layer.accounts)."""

from __future__ import annotations

import json

import pytest
from ocibuild.errors import OciBuildError
from ocibuild.layer.accounts import Accounts, load_accounts, merge_group, merge_passwd

NONROOT = {
    "users": [{"username": "nonroot", "uid": 65532, "gid": 65532}],
    "groups": [{"groupname": "nonroot", "gid": 65532, "members": ["nonroot"]}],
}
SHIPPED_PASSWD = b"root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/sbin/nologin\n"
SHIPPED_GROUP = b"root:x:0:root\nnobody:x:65534:\n"


def test_defaults_follow_apko():
    accounts = load_accounts(json.dumps(NONROOT), "accounts.json")
    (user,) = accounts.users
    assert (user.uid, user.gid, user.home, user.shell) == (65532, 65532, "/home/nonroot", "/bin/sh")
    only_uid = load_accounts('{"users": [{"username": "app", "uid": 1000}]}', "a.json")
    assert only_uid.users[0].gid == 1000


def test_merge_appends_and_keeps_shipped_lines():
    accounts = load_accounts(json.dumps(NONROOT), "accounts.json")
    passwd = merge_passwd(SHIPPED_PASSWD, accounts.users).decode()
    group = merge_group(SHIPPED_GROUP, accounts.groups).decode()
    assert passwd.startswith(SHIPPED_PASSWD.decode())
    assert passwd.splitlines()[-1].split(":") == [
        "nonroot",
        "x",
        "65532",
        "65532",
        "Account created by ocibuild",
        "/home/nonroot",
        "/bin/sh",
    ]
    assert group.startswith(SHIPPED_GROUP.decode())
    assert group.splitlines()[-1] == "nonroot:x:65532:nonroot"


def test_merge_creates_missing_files_and_replaces_same_name():
    users = load_accounts(
        '{"users": [{"username": "nobody", "uid": 65534, "shell": "/bin/false"}]}', "a"
    ).users
    assert (
        merge_passwd(None, users)
        == b"nobody:x:65534:65534:Account created by ocibuild:/home/nobody:/bin/false\n"
    )
    merged = merge_passwd(SHIPPED_PASSWD, users).decode().splitlines()
    assert len(merged) == 2 and merged[1].endswith(":/bin/false")


def test_id_held_by_another_name_is_refused():
    users = load_accounts('{"users": [{"username": "intruder", "uid": 0}]}', "a").users
    with pytest.raises(OciBuildError, match="id 0 is already used by 'root'"):
        merge_passwd(SHIPPED_PASSWD, users)


@pytest.mark.parametrize(
    "text, message",
    [
        (
            '{"users": [{"username": "a", "uid": 1, "homedir": "/x"}]}',
            r"`users\[0\]` has unknown key\(s\) homedir",
        ),
        ('{"users": [{"uid": 1}]}', r"`users\[0\].username` is required"),
        (
            '{"users": [{"username": "a:b", "uid": 1}]}',
            r"`users\[0\].username` 'a:b' is not a valid account name",
        ),
        ('{"users": [{"username": "a", "uid": -1}]}', r"`users\[0\].uid` -1 is not a valid numeric id"),
        ('{"users": [{"username": "a", "uid": "1"}]}', r"`users\[0\].uid` must be an integer, got '1'"),
        (
            '{"users": [{"username": "a", "uid": 1, "home": "rel"}]}',
            r"`users\[0\].home` 'rel' must be an absolute path",
        ),
        ('{"users": [{"username": "a", "uid": 1}, {"username": "a", "uid": 2}]}', "listed twice"),
        (
            '{"groups": [{"groupname": "g", "gid": 1, "members": "a"}]}',
            r"`groups\[0\].members` must be a list",
        ),
        ('{"users": [}', "not valid JSON"),
        ("[]", "must be an object"),
        ('{"users": 5}', "`users` must be a list of objects, got 5"),
        ('{"groups": {"groupname": "g"}}', "`groups` must be a list of objects"),
    ],
)
def test_malformed_accounts_are_refused(text, message):
    with pytest.raises(OciBuildError, match=message) as e:
        load_accounts(text, "images/accounts.json")
    assert str(e.value).startswith("images/accounts.json")
    assert "\n" not in str(e.value)


def test_null_lists_mean_none():
    # As everywhere the core's validator reads JSON: null is the key's default.
    assert load_accounts('{"users": null, "groups": null}', "a") == Accounts()


@pytest.mark.parametrize(
    "text, key, line",
    [
        ('{"users": [{"username": "a", "uid": 1}],\n "users": [{"username": "b", "uid": 2}]}', "users", 2),
        ('{"users": [\n  {"username": "a", "uid": 1,\n   "uid": 0}]}', "uid", 3),
    ],
    ids=["users-twice", "uid-twice"],
)
def test_duplicate_key_is_refused_naming_key_and_line(text, key, line):
    with pytest.raises(OciBuildError) as e:
        load_accounts(text, "images/accounts.json")
    assert str(e.value) == (
        f"images/accounts.json: line {line}: duplicate key {key!r}: each key may appear once; remove one"
    )
