"""Signing keys: ECDSA P-256 in PEM PKCS#8 (plain or encrypted) or cosign's own `cosign.key`, and PEM public keys.

cosign.key (`-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----`, or the older `... COSIGN ...` label) is
what `cosign generate-key-pair` writes (sigstore/cosign pkg/cosign/keys.go): the PEM body is the JSON
of go-securesystemslib's `encrypted` package: a PKCS#8 DER key sealed with NaCl secretbox
(XSalsa20-Poly1305) under a key derived from the password with scrypt (N 2^15, 2^16 or 2^17; r 8; p 1).
The password comes from the caller (read from an environment variable); an empty password is
valid, as with cosign. Secrets never appear in error messages.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional, Tuple

import nacl.exceptions
import nacl.secret
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed448, ed25519, rsa
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt
from ocibuild.errors import OciBuildError
from ocibuild.sign.gojson import go_bytes, marshal

__all__ = [
    "SigningKey",
    "PublicKey",
    "load_signing_key",
    "load_public_key",
    "parse_signing_key",
    "parse_public_key",
    "encrypt_cosign_key",
    "SIGSTORE_KEY_PEM_TYPE",
    "COSIGN_KEY_PEM_TYPE",
]

SIGSTORE_KEY_PEM_TYPE = "ENCRYPTED SIGSTORE PRIVATE KEY"
COSIGN_KEY_PEM_TYPE = "ENCRYPTED COSIGN PRIVATE KEY"
_COSIGN_TYPES = (SIGSTORE_KEY_PEM_TYPE, COSIGN_KEY_PEM_TYPE)
_PKCS8_TYPES = ("PRIVATE KEY", "ENCRYPTED PRIVATE KEY", "EC PRIVATE KEY")

# go-securesystemslib's accepted scrypt parameters (anything else is refused, as there: a DoS guard).
SCRYPT_PARAMS = {"legacy": (32768, 8, 1), "standard": (65536, 8, 1), "owasp": (131072, 8, 1)}
_SALT_SIZE = 32
_NONCE_SIZE = nacl.secret.SecretBox.NONCE_SIZE  # 24

_KEY_KINDS = (
    (rsa.RSAPrivateKey, "RSA"),
    (ed25519.Ed25519PrivateKey, "Ed25519"),
    (ed448.Ed448PrivateKey, "Ed448"),
    (dsa.DSAPrivateKey, "DSA"),
)

_PEM_BLOCK = re.compile(rb"-----BEGIN ([A-Z0-9 ]+)-----\r?\n(.*?)-----END \1-----", re.DOTALL)


@dataclass(frozen=True)
class PublicKey:
    """An ECDSA P-256 public key, as in cosign.pub."""

    key: ec.EllipticCurvePublicKey
    origin: str  # the file (or description) it came from, for messages

    def der(self) -> bytes:
        return self.key.public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )

    def pem(self) -> bytes:
        """cosign.pub's bytes (sigstore cryptoutils.MarshalPublicKeyToPEM: PKIX in a PUBLIC KEY block)."""
        return _pem_block("PUBLIC KEY", self.der())

    def hint(self) -> str:
        """The Sigstore bundle's public-key hint: base64(sha256(PKIX DER)), as cosign computes it."""
        return base64.b64encode(hashlib.sha256(self.der()).digest()).decode("ascii")

    def verifies(self, signature: bytes, data: bytes) -> bool:
        """Whether `signature` (ASN.1 DER ECDSA) is this key's over SHA-256(data)."""
        try:
            self.key.verify(signature, data, ec.ECDSA(hashes.SHA256()))
        except (InvalidSignature, ValueError):
            return False
        return True


@dataclass(frozen=True)
class SigningKey:
    """An ECDSA P-256 private key; signatures are ASN.1 DER over SHA-256, as cosign makes them."""

    key: ec.EllipticCurvePrivateKey
    origin: str

    @property
    def public_key(self) -> PublicKey:
        return PublicKey(self.key.public_key(), self.origin)

    def sign(self, data: bytes) -> bytes:
        return self.key.sign(data, ec.ECDSA(hashes.SHA256()))


def _pem_block(pem_type: str, der: bytes) -> bytes:
    """A PEM block exactly as Go's pem.EncodeToMemory writes it (64-column base64, trailing newline)."""
    body = base64.b64encode(der).decode("ascii")
    lines = [body[i : i + 64] for i in range(0, len(body), 64)]
    return ("\n".join([f"-----BEGIN {pem_type}-----", *lines, f"-----END {pem_type}-----"]) + "\n").encode(
        "ascii"
    )


def _first_pem_block(data: bytes, origin: str) -> Tuple[str, bytes, bytes]:
    """(type, whole block bytes, decoded body) of the first PEM block, as Go's pem.Decode takes it."""
    match = _PEM_BLOCK.search(data)
    if not match:
        raise OciBuildError(f"{origin}: not a PEM file (no -----BEGIN ...----- block); expected a PEM key")
    body_lines = [line for line in match.group(2).split(b"\n") if line.strip()]
    # Lines with a colon are RFC 1421 headers (Proc-Type, DEK-Info), never base64.
    payload = b"".join(line.strip() for line in body_lines if b":" not in line)
    try:
        der = base64.b64decode(payload, validate=True)
    except binascii.Error:
        raise OciBuildError(f"{origin}: the PEM block's base64 is corrupt") from None
    block = match.group(0) + b"\n"
    return match.group(1).decode("ascii"), block, der


def _checked_p256(key: Any, origin: str) -> ec.EllipticCurvePrivateKey:
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        kind = next((name for cls, name in _KEY_KINDS if isinstance(key, cls)), type(key).__name__)
        raise OciBuildError(
            f"{origin}: unsupported key type {kind}; signing keys must be ECDSA P-256 "
            "(cosign generate-key-pair, or openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256)"
        )
    if not isinstance(key.curve, ec.SECP256R1):
        raise OciBuildError(f"{origin}: unsupported curve {key.curve.name}; signing keys must be ECDSA P-256")
    return key


def _field(obj: Any, name: str, origin: str) -> Any:
    """A JSON object's field as Go's json.Unmarshal finds it: exact name first, else case-insensitively."""
    if isinstance(obj, dict):
        if name in obj:
            return obj[name]
        for key, value in obj.items():
            if key.lower() == name.lower():
                return value
    raise OciBuildError(f"{origin}: the encrypted key has no {name!r} field; is it a cosign.key?")


def _go_base64(value: Any, what: str, origin: str) -> bytes:
    if not isinstance(value, str):
        raise OciBuildError(f"{origin}: the encrypted key's {what} is not a base64 string")
    try:
        return base64.b64decode(value.replace("\r", "").replace("\n", ""), validate=True)
    except binascii.Error:
        raise OciBuildError(f"{origin}: the encrypted key's {what} is not valid base64") from None


def _der_header_length(der: bytes, offset: int) -> int:
    """How many bytes a DER tag and length take at `offset`."""
    first = der[offset + 1]
    return 2 + (first & 0x7F if first & 0x80 else 0)


def _is_pkcs8(der: bytes) -> bool:
    """Whether DER is a PKCS#8 PrivateKeyInfo (SEQUENCE { INTEGER, SEQUENCE algorithm, ... }) rather than
    another key encoding: cosign's x509.ParsePKCS8PrivateKey accepts nothing else, and nor do we."""
    try:
        if der[0] != 0x30:
            return False
        version = _der_header_length(der, 0)
        if der[version] != 0x02:
            return False
        algorithm = version + 2 + der[version + 1]
        return der[algorithm] == 0x30
    except IndexError:
        return False


def _scrypt_key(password: bytes, salt: bytes, n: int, r: int, p: int) -> bytes:
    return Scrypt(salt=salt, length=nacl.secret.SecretBox.KEY_SIZE, n=n, r=r, p=p).derive(password)


def _decrypt_cosign_key(sealed_json: bytes, password: bytes, origin: str) -> bytes:
    """go-securesystemslib encrypted.Decrypt: the PKCS#8 DER inside a cosign.key."""
    try:
        data = json.loads(sealed_json.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise OciBuildError(
            f"{origin}: the encrypted key is not the JSON cosign writes; is it a cosign.key?"
        ) from None
    kdf = _field(data, "kdf", origin)
    cipher = _field(data, "cipher", origin)
    if _field(kdf, "name", origin) != "scrypt":
        raise OciBuildError(
            f"{origin}: unknown key derivation {_field(kdf, 'name', origin)!r} (cosign uses scrypt)"
        )
    if _field(cipher, "name", origin) != "nacl/secretbox":
        raise OciBuildError(
            f"{origin}: unknown cipher {_field(cipher, 'name', origin)!r} (cosign uses nacl/secretbox)"
        )
    params = _field(kdf, "params", origin)
    n, r, p = (_field(params, name, origin) for name in ("N", "r", "p"))
    if (n, r, p) not in SCRYPT_PARAMS.values():
        raise OciBuildError(f"{origin}: unsupported scrypt parameters N={n} r={r} p={p}")
    salt = _go_base64(_field(kdf, "salt", origin), "salt", origin)
    nonce = _go_base64(_field(cipher, "nonce", origin), "nonce", origin)
    ciphertext = _go_base64(_field(data, "ciphertext", origin), "ciphertext", origin)
    if len(nonce) != _NONCE_SIZE:
        raise OciBuildError(f"{origin}: the encrypted key's nonce has {len(nonce)} bytes, not {_NONCE_SIZE}")
    box = nacl.secret.SecretBox(_scrypt_key(password, salt, n, r, p))
    try:
        return box.decrypt(ciphertext, nonce)
    except nacl.exceptions.CryptoError:
        raise OciBuildError(
            f"{origin}: wrong password for the cosign key (or the file is corrupt); check the password variable"
        ) from None


def encrypt_cosign_key(key: ec.EllipticCurvePrivateKey, password: bytes, strength: str = "standard") -> bytes:
    """A cosign.key for `key`, as cosign generate-key-pair writes it (go-securesystemslib Encrypt, Standard KDF)."""
    n, r, p = SCRYPT_PARAMS[strength]
    salt = os.urandom(_SALT_SIZE)
    nonce = os.urandom(_NONCE_SIZE)
    pkcs8 = key.private_bytes(
        serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    ciphertext = nacl.secret.SecretBox(_scrypt_key(password, salt, n, r, p)).encrypt(pkcs8, nonce).ciphertext
    sealed = {
        "kdf": {"name": "scrypt", "params": {"N": n, "r": r, "p": p}, "salt": go_bytes(salt)},
        "cipher": {"name": "nacl/secretbox", "nonce": go_bytes(nonce)},
        "ciphertext": go_bytes(ciphertext),
    }
    return _pem_block(SIGSTORE_KEY_PEM_TYPE, marshal(sealed))


def parse_signing_key(data: bytes, password: Optional[bytes], origin: str) -> SigningKey:
    """An ECDSA P-256 private key from a cosign.key or a PEM PKCS#8 (or SEC1) file's bytes."""
    pem_type, block, der = _first_pem_block(data, origin)
    if pem_type in _COSIGN_TYPES:
        pkcs8 = _decrypt_cosign_key(der, password or b"", origin)
        try:
            if not _is_pkcs8(pkcs8):
                raise ValueError("not PKCS#8")
            key = serialization.load_der_private_key(pkcs8, password=None)
        except (ValueError, UnsupportedAlgorithm):
            raise OciBuildError(f"{origin}: the decrypted cosign key is not a PKCS#8 private key") from None
        return SigningKey(_checked_p256(key, origin), origin)
    if pem_type not in _PKCS8_TYPES:
        raise OciBuildError(
            f"{origin}: unsupported PEM block {pem_type!r}; expected a cosign.key or a PKCS#8 PRIVATE KEY"
        )
    encrypted = pem_type == "ENCRYPTED PRIVATE KEY" or b"Proc-Type: 4,ENCRYPTED" in block
    if encrypted and not password:
        raise OciBuildError(
            f"{origin}: the key is encrypted and no password was given; set the password variable"
        )
    try:
        key = serialization.load_pem_private_key(block, password=password if encrypted else None)
    except (TypeError, ValueError, UnsupportedAlgorithm):
        if encrypted:
            raise OciBuildError(
                f"{origin}: wrong password for the private key (or the file is corrupt); check the password variable"
            ) from None
        raise OciBuildError(f"{origin}: not a readable {pem_type} block") from None
    return SigningKey(_checked_p256(key, origin), origin)


def parse_public_key(data: bytes, origin: str) -> PublicKey:
    """An ECDSA P-256 public key from a PEM PUBLIC KEY block (cosign.pub)."""
    pem_type, block, _der = _first_pem_block(data, origin)
    if pem_type != "PUBLIC KEY":
        raise OciBuildError(f"{origin}: expected a PEM PUBLIC KEY block (cosign.pub), found {pem_type!r}")
    try:
        key = serialization.load_pem_public_key(block)
    except (ValueError, UnsupportedAlgorithm):
        raise OciBuildError(f"{origin}: the PUBLIC KEY block is not a readable PKIX public key") from None
    if not isinstance(key, ec.EllipticCurvePublicKey) or not isinstance(key.curve, ec.SECP256R1):
        raise OciBuildError(f"{origin}: unsupported public key type; cosign.pub keys here are ECDSA P-256")
    return PublicKey(key, origin)


def _read(path: Path, what: str) -> bytes:
    try:
        return path.read_bytes()
    except OSError as e:
        raise OciBuildError(f"{path}: cannot read the {what} ({e.strerror})") from None


def load_signing_key(path: Path, password: Optional[bytes]) -> SigningKey:
    """The signing key in `path`; `password` (possibly empty) for encrypted keys, None when there is none."""
    return parse_signing_key(_read(path, "signing key"), password, str(path))


def load_public_key(path: Path) -> PublicKey:
    return parse_public_key(_read(path, "public key"), str(path))
