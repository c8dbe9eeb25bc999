"""lib/apk/db/installed, line by line, for a fixture package whose every field is known."""

from __future__ import annotations

import base64
import hashlib

from testutil.apk_layers import build_fixture_layer, layer_members
from testutil.apkbuild import build_apk, directory, hardlink, package_parts, q1, reg_file, symlink


def z(data: bytes) -> str:
    return "Z:Q1" + base64.b64encode(hashlib.sha1(data).digest()).decode()


def test_exact_block_as_apk_tools_writes_it(tmp_path):
    hello = build_apk(
        "hello",
        "1.0-r0",
        files=[
            directory("usr"),
            directory("usr/bin"),
            reg_file("usr/bin/hello", b"#!/bin/sh\necho hi\n", mode=0o755),
            symlink("usr/bin/hi", "hello"),
            hardlink("usr/bin/hey", "usr/bin/hello", mode=0o755),
            directory("var"),
            directory("var/lib"),
            directory("var/lib/hello", mode=0o750, uid=100, gid=101),
            reg_file("var/lib/hello/state", b"s", mode=0o640, uid=100, gid=101),
            directory("tmp", mode=0o1777),
        ],
        depends=["base"],
        provides=["cmd:hello=1.0-r0"],
        replaces=["oldhello"],
        builddate=1700000123,
        description="Says hello",
        url="https://example.com/hello",
        license="MIT",
        origin="hello-src",
        commit="0123456789abcdef0123456789abcdef01234567",
        maintainer="Jo <jo@example.com>",
        installed_size=8192,
    )
    base = build_apk("base", "2-r1", files=[directory("etc"), reg_file("etc/base", b"b")])
    _, layer = build_fixture_layer(tmp_path, [hello, base])
    text = layer_members(layer)["lib/apk/db/installed"][1].decode()
    expected = (
        f"C:{q1(package_parts(base)['control'])}\nP:base\nV:2-r1\nA:x86_64\nS:{len(base)}\nI:4096\n"
        "T:base test package\nU:https://example.com/base\nL:MIT\no:base\nm:Test <test@example.com>\n"
        f"t:1700000000\nc:{hashlib.sha1(b'base-2-r1').hexdigest()}\n"
        f"F:etc\nR:base\n{z(b'b')}\n"
        "\n"
        f"C:{q1(package_parts(hello)['control'])}\nP:hello\nV:1.0-r0\nA:x86_64\nS:{len(hello)}\nI:8192\n"
        "T:Says hello\nU:https://example.com/hello\nL:MIT\no:hello-src\nm:Jo <jo@example.com>\n"
        "t:1700000123\nc:0123456789abcdef0123456789abcdef01234567\n"
        "D:base\np:cmd:hello=1.0-r0\nr:oldhello\n"
        "F:usr\n"
        "F:usr/bin\n"
        f"R:hello\na:0:0:755\n{z(b'#!/bin/sh' + bytes([10]) + b'echo hi' + bytes([10]))}\n"
        f"R:hi\na:0:0:777\n{z(b'hello')}\n"
        f"R:hey\na:0:0:755\n{z(b'#!/bin/sh' + bytes([10]) + b'echo hi' + bytes([10]))}\n"
        "F:var\n"
        "F:var/lib\n"
        "F:var/lib/hello\nM:100:101:750\n"
        f"R:state\na:100:101:640\n{z(b's')}\n"
        "F:tmp\nM:0:0:1777\n"
        "\n"
    )
    assert text.splitlines() == expected.splitlines()
    assert text == expected
