"""Signing keys: cosign.key (cosign's own fixtures and our writer), PEM PKCS#8 from openssl, cosign.pub."""

from __future__ import annotations

import base64
import hashlib
import json
import re
import subprocess
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat, PublicFormat
from ocibuild.errors import OciBuildError
from ocibuild.sign.keys import encrypt_cosign_key, load_public_key, load_signing_key, parse_signing_key
from testutil.servers import require_tool

# sigstore/cosign pkg/cosign/keys_test.go (commit d6d86c2): keys written by cosign, password "hello".
# pemsigstorekey and pemcosignkey (commented "RSA" there, but an ECDSA P-256 key under the older COSIGN
# label) load in cosign; pemcosigneckey holds a SEC1 (not PKCS#8) key, which cosign's LoadPrivateKey refuses.
COSIGN_SIGSTORE_KEY = b"""-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----
eyJrZGYiOnsibmFtZSI6InNjcnlwdCIsInBhcmFtcyI6eyJOIjozMjc2OCwiciI6
OCwicCI6MX0sInNhbHQiOiI3T3VGd2VsbWZZNXVId2NoaURSc210anNwZ2ZlZjFG
Mk5lOGFDTjVLYVpZPSJ9LCJjaXBoZXIiOnsibmFtZSI6Im5hY2wvc2VjcmV0Ym94
Iiwibm9uY2UiOiJQNHk4OGhCb3ZTa09MbXN0bFVBaGJwdDJ0K2xTNUxQSCJ9LCJj
aXBoZXJ0ZXh0IjoiMnB1QzdyZldJOWh3bnJlQ2s4aUZDRlVwQlRrSzRJNlIvbFBF
cnBDekpXUGpJWXl4eGVIL1A2VW52cFJHdVhla1NNb3JMdGhLamdoQ1JlNy82NDVH
QWtoVm1LRC92eEF0S2EvbE1abENSQ3FlekJGUFd1dzNpeFRtZ2xhb2J1ZFVSbUVs
bmNGOGlZbzBTMVl6Y1ZOMVFwY2J2c0dNcUlYRzVlbmdteGp5dCtBcXlyZTF0Q0Y0
V01tU1BlaEljNlBqd2h1Q2xHaVpJUWRvTGc9PSJ9
-----END ENCRYPTED SIGSTORE PRIVATE KEY-----
"""
COSIGN_LABELLED_KEY = b"""-----BEGIN ENCRYPTED COSIGN PRIVATE KEY-----
eyJrZGYiOnsibmFtZSI6InNjcnlwdCIsInBhcmFtcyI6eyJOIjozMjc2OCwiciI6
OCwicCI6MX0sInNhbHQiOiJ4WWdoc09JTUxUWGNOT0RsclNIOUNKc1FlOVFnZmN1
cmUrMXlLdHh1TlkwPSJ9LCJjaXBoZXIiOnsibmFtZSI6Im5hY2wvc2VjcmV0Ym94
Iiwibm9uY2UiOiI0cS9PSlVmaXJkSUkrUjZ0ajZBMmcyQ0JqL25xdFNicCJ9LCJj
aXBoZXJ0ZXh0IjoiKzB4Q3NzcFN0WStBczdKanJpOWtsbHBWd2JhcUI4ZWJNdWto
eS9aVE1MSXRsL3B1YS9jWVJvbytLRGxMWWdmOW1kSjk4K1FnQW9oTktoYnJPMTcw
MHdBY1JTMjFDOE4zQUNJRUVZaWpOMllBNnMraGJSbkhjUnd4eGhDMDFtb2FvL0dO
Y1pmbEJheXZMV3pXblo4d2NDZ2ZpT1o1VXlRTEFJMHh0dnR6dEh3cTdDV1Vhd3V4
RlhlNDZzck9TUE9SNHN6bytabWErUGovSFE9PSJ9
-----END ENCRYPTED COSIGN PRIVATE KEY-----
"""
COSIGN_SEC1_KEY = b"""-----BEGIN ENCRYPTED COSIGN PRIVATE KEY-----
eyJrZGYiOnsibmFtZSI6InNjcnlwdCIsInBhcmFtcyI6eyJOIjo2NTUzNiwiciI6
OCwicCI6MX0sInNhbHQiOiJHK3F5WTYrNzhNS0JzMXNGTGs1ajYwcS9kS3Z1czBW
VkhlSHZybC9POTF3PSJ9LCJjaXBoZXIiOnsibmFtZSI6Im5hY2wvc2VjcmV0Ym94
Iiwibm9uY2UiOiJRc2JGdG13WDRDK2ttV3ZCcVRaMEFGOUFYdk1jRmg1SCJ9LCJj
aXBoZXJ0ZXh0IjoiREM5T28zeldiYVQzSXYwdFVnWEdycjUxYW1samwwNlQ5MTNP
VkxPbWpuMWhnK2o2WXRUbWg3SGhZSlY1N2J5eGE0Q281bE9YYmRqbTJ3aklubEd1
Um5aZCt5OExnekpSNzFSeEhKVzgrWmRlcFJmYWJMTjdHbDgrSFZEcERVQ3NxQnRh
VngyblpGbFEwWUl1anZwbFphblNGaUVvdERLVGkxZ3VhUXIwUHNzYU01NXZxbTRY
WS9rPSJ9
-----END ENCRYPTED COSIGN PRIVATE KEY-----
"""


def _sealed_json(pem: bytes) -> dict:
    body = b"".join(pem.strip().split(b"\n")[1:-1])
    return json.loads(base64.b64decode(body))


@pytest.mark.parametrize(
    "pem", [COSIGN_SIGSTORE_KEY, COSIGN_LABELLED_KEY], ids=["sigstore-label", "cosign-label"]
)
def test_cosigns_own_keys_load_and_sign(pem: bytes, openssl_verify) -> None:
    key = parse_signing_key(pem, b"hello", "cosign.key")
    assert isinstance(key.key.curve, ec.SECP256R1)
    assert openssl_verify(key.public_key.pem(), key.sign(b"payload"), b"payload")


def test_cosign_key_with_the_wrong_or_no_password() -> None:
    with pytest.raises(OciBuildError, match="cosign.key: wrong password") as info:
        parse_signing_key(COSIGN_SIGSTORE_KEY, b"hunter2", "cosign.key")
    assert "hunter2" not in str(info.value)
    with pytest.raises(OciBuildError, match="wrong password"):
        parse_signing_key(COSIGN_SIGSTORE_KEY, None, "cosign.key")


def test_cosign_keys_we_do_not_sign_with() -> None:
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    with pytest.raises(
        OciBuildError, match="rsa.key: unsupported key type RSA; signing keys must be ECDSA P-256"
    ):
        parse_signing_key(encrypt_cosign_key(rsa_key, b"pw"), b"pw", "rsa.key")  # type: ignore[arg-type]
    with pytest.raises(OciBuildError, match="rsa.pem: unsupported key type RSA"):
        parse_signing_key(
            rsa_key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption()), None, "rsa.pem"
        )
    with pytest.raises(OciBuildError, match="not a PKCS#8 private key"):
        parse_signing_key(COSIGN_SEC1_KEY, b"hello", "sec1.key")


def test_our_cosign_key_is_what_cosign_writes(openssl_verify) -> None:
    private = ec.generate_private_key(ec.SECP256R1())
    pem = encrypt_cosign_key(private, b"s3cret")
    lines = pem.decode().split("\n")
    assert lines[0] == "-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----" and lines[-2:] == [
        "-----END ENCRYPTED SIGSTORE PRIVATE KEY-----",
        "",
    ]
    assert all(len(line) == 64 for line in lines[1:-3]) and 0 < len(lines[-3]) <= 64  # Go's pem.Encode
    sealed = _sealed_json(pem)
    # go-securesystemslib's struct order and its Standard scrypt strength, []byte fields as std base64
    assert list(sealed) == ["kdf", "cipher", "ciphertext"]
    assert list(sealed["kdf"]) == ["name", "params", "salt"]
    assert sealed["kdf"]["params"] == {"N": 65536, "r": 8, "p": 1} and list(sealed["kdf"]["params"]) == [
        "N",
        "r",
        "p",
    ]
    assert (
        sealed["cipher"]["name"] == "nacl/secretbox"
        and len(base64.b64decode(sealed["cipher"]["nonce"])) == 24
    )
    assert len(base64.b64decode(sealed["kdf"]["salt"])) == 32
    body = b"".join(pem.strip().split(b"\n")[1:-1])
    assert b" " not in base64.b64decode(body)  # compact Go JSON
    key = parse_signing_key(pem, b"s3cret", "ours.key")
    assert key.public_key.der() == public_der(private)
    assert openssl_verify(key.public_key.pem(), key.sign(b"x"), b"x")
    with pytest.raises(OciBuildError, match="wrong password"):
        parse_signing_key(pem, b"s3cres", "ours.key")


def public_der(private: ec.EllipticCurvePrivateKey) -> bytes:
    return private.public_key().public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)


@pytest.mark.parametrize("strength", ["legacy", "owasp"])
def test_cosign_key_strengths_and_an_empty_password(strength: str) -> None:
    private = ec.generate_private_key(ec.SECP256R1())
    key = parse_signing_key(encrypt_cosign_key(private, b"", strength), None, "empty.key")
    assert key.public_key.der() == public_der(private)


def test_cosign_key_with_tampered_parameters() -> None:
    sealed = _sealed_json(encrypt_cosign_key(ec.generate_private_key(ec.SECP256R1()), b"pw"))
    sealed["kdf"]["params"]["N"] = 1 << 22  # a DoS attempt: go-securesystemslib refuses unknown strengths
    body = base64.b64encode(json.dumps(sealed).encode()).decode()
    pem = f"-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----\n{body}\n-----END ENCRYPTED SIGSTORE PRIVATE KEY-----\n"
    with pytest.raises(OciBuildError, match="unsupported scrypt parameters N=4194304 r=8 p=1"):
        parse_signing_key(pem.encode(), b"pw", "tampered.key")


def _openssl(*args: str) -> None:
    subprocess.run([require_tool("openssl"), *args], check=True, capture_output=True)


def test_pkcs8_keys_from_openssl(tmp_path: Path, openssl_verify) -> None:
    plain, encrypted, public = tmp_path / "plain.pem", tmp_path / "enc.pem", tmp_path / "cosign.pub"
    _openssl("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", str(plain))
    _openssl(
        "pkcs8",
        "-topk8",
        "-v2",
        "aes-256-cbc",
        "-in",
        str(plain),
        "-out",
        str(encrypted),
        "-passout",
        "pass:pw1",
    )
    _openssl("pkey", "-in", str(plain), "-pubout", "-out", str(public))
    assert b"BEGIN ENCRYPTED PRIVATE KEY" in encrypted.read_bytes()
    pub = load_public_key(public)
    for key in (
        load_signing_key(plain, None),
        load_signing_key(plain, b"ignored"),
        load_signing_key(encrypted, b"pw1"),
    ):
        assert key.public_key.der() == pub.der()
        assert openssl_verify(public.read_bytes(), key.sign(b"data"), b"data")
    with pytest.raises(OciBuildError, match=re.escape(f"{encrypted}: wrong password")):
        load_signing_key(encrypted, b"pw2")
    with pytest.raises(OciBuildError, match="encrypted and no password was given"):
        load_signing_key(encrypted, None)
    # the bundle's key hint, from openssl's own DER
    der = subprocess.run(
        [require_tool("openssl"), "pkey", "-pubin", "-in", str(public), "-outform", "DER"],
        check=True,
        capture_output=True,
    ).stdout
    assert pub.hint() == base64.b64encode(hashlib.sha256(der).digest()).decode()
    assert pub.pem() == public.read_bytes()


def test_unsupported_keys_and_files(tmp_path: Path) -> None:
    p384 = tmp_path / "p384.pem"
    p384.write_bytes(
        ec.generate_private_key(ec.SECP384R1()).private_bytes(
            Encoding.PEM, PrivateFormat.PKCS8, NoEncryption()
        )
    )
    with pytest.raises(OciBuildError, match="unsupported curve secp384r1"):
        load_signing_key(p384, None)
    ed = tmp_path / "ed.pem"
    ed.write_bytes(
        ed25519.Ed25519PrivateKey.generate().private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption())
    )
    with pytest.raises(OciBuildError, match="unsupported key type Ed25519"):
        load_signing_key(ed, None)
    with pytest.raises(OciBuildError, match="expected a PEM PUBLIC KEY block"):
        load_public_key(p384)
    garbage = tmp_path / "garbage"
    garbage.write_text("hello")
    with pytest.raises(OciBuildError, match="not a PEM file"):
        load_signing_key(garbage, None)
    with pytest.raises(OciBuildError, match="cannot read the signing key"):
        load_signing_key(tmp_path / "missing.key", None)
