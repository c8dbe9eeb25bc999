"""Trusted apk signing keys, and verification of an archive's control-member signature."""

from __future__ import annotations

from pathlib import Path
from typing import Dict, Mapping, Optional, Tuple, Union

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from ocibuild.apk.archive import ApkArchive
from ocibuild.errors import OciBuildError

__all__ = ["Keyring", "public_pem_problem"]

_HASHES = {"sha1": hashes.SHA1, "sha256": hashes.SHA256}


class Keyring:
    """Public RSA keys by file name; a signature names its key by that file name (`.SIGN.RSA.<name>`)."""

    def __init__(self, pems: Mapping[str, bytes], keys: Mapping[str, rsa.RSAPublicKey]):
        self._pems: Dict[str, bytes] = dict(pems)
        self._keys: Dict[str, rsa.RSAPublicKey] = dict(keys)

    @classmethod
    def from_pems(cls, mapping: Mapping[str, bytes]) -> "Keyring":
        keys = {}
        for name, pem in sorted(mapping.items()):
            if not name or "/" in name:
                raise OciBuildError(
                    f"apk key {name!r}: a key name must be a plain file name like 'x@y-1234.rsa.pub'"
                )
            try:
                key = serialization.load_pem_public_key(bytes(pem))
            except (ValueError, TypeError) as e:
                raise OciBuildError(
                    f"apk key {name}: not a PEM public key ({e}): fetch the key file again"
                ) from None
            if not isinstance(key, rsa.RSAPublicKey):
                raise OciBuildError(f"apk key {name}: not an RSA public key: apk signatures use RSA keys")
            keys[name] = key
        return cls({name: bytes(pem) for name, pem in mapping.items()}, keys)

    @classmethod
    def from_dir(cls, path: Union[str, Path]) -> "Keyring":
        """Every `*.pub` file of `path` (like /etc/apk/keys)."""
        directory = Path(path)
        if not directory.is_dir():
            raise OciBuildError(f"{directory}: apk keyring folder does not exist")
        return cls.from_pems({p.name: p.read_bytes() for p in sorted(directory.glob("*.pub")) if p.is_file()})

    @property
    def names(self) -> Tuple[str, ...]:
        return tuple(sorted(self._keys))

    def pem(self, name: str) -> bytes:
        try:
            return self._pems[name]
        except KeyError:
            raise OciBuildError(
                f"apk key {name} is not in the keyring (keys: {', '.join(self.names) or 'none'})"
            ) from None

    def verify(self, archive: ApkArchive) -> str:
        """The name of the key whose signature over the control member verifies; OciBuildError otherwise."""
        if not archive.signatures:
            raise OciBuildError(f"{archive.origin}: unsigned (no .SIGN.RSA.* member): refusing to trust it")
        known = [s for s in archive.signatures if s.key_name in self._keys]
        if not known:
            names = ", ".join(sorted(s.key_name for s in archive.signatures))
            raise OciBuildError(
                f"{archive.origin}: signed by {names}, which is not in the keyring ({', '.join(self.names) or 'empty'}): "
                "add that key to the spec's keyring if you trust it"
            )
        control = archive.control_member
        for sig in known:
            try:
                self._keys[sig.key_name].verify(
                    sig.signature, control, padding.PKCS1v15(), _HASHES[sig.algorithm]()
                )
                return sig.key_name
            except InvalidSignature:
                continue
        names = ", ".join(sorted(s.key_name for s in known))
        raise OciBuildError(
            f"{archive.origin}: signature by {names} does not match the control data: the file was modified or "
            "corrupted, fetch it again from a trusted mirror"
        )


def public_pem_problem(pem: bytes) -> Optional[str]:
    """What keeps `pem` from being an apk key file (an ASCII PEM RSA public key), or None."""
    if b"-----BEGIN PUBLIC KEY-----" not in pem:
        return "not a PEM public key"
    if not pem.isascii():
        return "the PEM key holds non-ASCII bytes; use a plain key file"
    try:
        key = serialization.load_pem_public_key(pem)
    except (ValueError, TypeError) as e:
        return f"not a PEM public key ({e}): fetch the key file again"
    if not isinstance(key, rsa.RSAPublicKey):
        return "not an RSA public key: apk signatures use RSA keys"
    return None
