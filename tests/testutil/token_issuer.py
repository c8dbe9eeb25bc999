"""A small token issuer for distribution's `token` auth, run by the tests on 127.0.0.1.

It implements Docker's token protocol (GET /token?service=...&scope=..., Basic credentials) and signs
ES256 JWTs the way distribution 2.8 verifies them (registry/auth/token/token.go): the header's `x5c`
carries the signing certificate, which chains to the CA in the registry's `rootcertbundle`; the claims
carry `iss`, `aud` (the service), `exp`/`nbf`/`iat`, and `access` with the granted actions.
"""

from __future__ import annotations

import base64
import contextlib
import datetime
import json
import secrets
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Dict, Iterator, List, Optional, Tuple
from urllib.parse import parse_qs, urlparse

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from cryptography.x509.oid import NameOID
from testutil.servers import free_port

SERVICE = "test-registry"
ISSUER = "test-token-issuer"


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _certificate(
    subject: str, key: ec.EllipticCurvePrivateKey, issuer: Tuple[str, ec.EllipticCurvePrivateKey], ca: bool
) -> x509.Certificate:
    now = datetime.datetime.now(datetime.timezone.utc)
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
        .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, issuer[0])]))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=not ca,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=ca,
                crl_sign=ca,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
    )
    return builder.sign(issuer[1], hashes.SHA256())


@dataclass
class TokenIssuer:
    users: Dict[str, str]  # username -> password
    ca_bundle: Path
    address: str = ""
    requests: List[Tuple[Optional[str], Tuple[str, ...]]] = field(default_factory=list)  # (user, scopes)
    lifetime: int = 300

    def __post_init__(self) -> None:
        ca_key = ec.generate_private_key(ec.SECP256R1())
        ca = _certificate("test token CA", ca_key, ("test token CA", ca_key), ca=True)
        self._key = ec.generate_private_key(ec.SECP256R1())
        self._cert = _certificate("test token signer", self._key, ("test token CA", ca_key), ca=False)
        self.ca_bundle.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
        self._lock = threading.Lock()

    @property
    def realm(self) -> str:
        return f"http://{self.address}/token"

    def registry_auth(self) -> dict:
        """The `auth` section for docker_registry_with_auth."""
        return {
            "token": {
                "realm": self.realm,
                "service": SERVICE,
                "issuer": ISSUER,
                "rootcertbundle": str(self.ca_bundle),
            }
        }

    def token(self, subject: str, scopes: Tuple[str, ...]) -> str:
        header = {
            "typ": "JWT",
            "alg": "ES256",
            "x5c": [base64.b64encode(self._cert.public_bytes(serialization.Encoding.DER)).decode("ascii")],
        }
        access = []
        for scope in scopes:
            kind, _, rest = scope.partition(":")
            name, _, actions = rest.rpartition(":")
            access.append({"type": kind, "name": name, "actions": [a for a in actions.split(",") if a]})
        now = int(time.time())
        claims = {
            "iss": ISSUER,
            "sub": subject,
            "aud": SERVICE,
            "exp": now + self.lifetime,
            "nbf": now - 30,
            "iat": now,
            "jti": secrets.token_hex(8),
            "access": access,
        }
        signing_input = f"{_b64url(json.dumps(header).encode())}.{_b64url(json.dumps(claims).encode())}"
        r, s = decode_dss_signature(self._key.sign(signing_input.encode("ascii"), ec.ECDSA(hashes.SHA256())))
        return f"{signing_input}.{_b64url(r.to_bytes(32, 'big') + s.to_bytes(32, 'big'))}"

    def record(self, user: Optional[str], scopes: Tuple[str, ...]) -> None:
        with self._lock:
            self.requests.append((user, scopes))


def _handler(issuer: TokenIssuer) -> type:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: object) -> None:
            pass

        def _answer(self, status: int, value: dict) -> None:
            data = json.dumps(value).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:
            url = urlparse(self.path)
            query = parse_qs(url.query)
            scopes = tuple(s for value in query.get("scope", []) for s in value.split(" ") if s)
            user: Optional[str] = None
            header = self.headers.get("Authorization", "")
            if header.startswith("Basic "):
                name, _, password = base64.b64decode(header[6:]).decode().partition(":")
                if issuer.users.get(name) != password:
                    issuer.record(name, scopes)
                    return self._answer(
                        401, {"errors": [{"code": "UNAUTHORIZED", "message": "bad credentials"}]}
                    )
                user = name
            issuer.record(user, scopes)
            if url.path != "/token" or query.get("service") != [SERVICE]:
                return self._answer(400, {"errors": [{"code": "BAD_REQUEST", "message": "unknown service"}]})
            if user is None:
                return self._answer(
                    401, {"errors": [{"code": "UNAUTHORIZED", "message": "credentials required"}]}
                )
            token = issuer.token(user, scopes)
            self._answer(200, {"token": token, "access_token": token, "expires_in": issuer.lifetime})

    return Handler


@contextlib.contextmanager
def token_issuer(workdir: Path, users: Dict[str, str]) -> Iterator[TokenIssuer]:
    issuer = TokenIssuer(users, workdir / "token-ca.pem")
    port = free_port()
    server = ThreadingHTTPServer(("127.0.0.1", port), _handler(issuer))
    server.daemon_threads = True
    issuer.address = f"127.0.0.1:{port}"
    thread = threading.Thread(target=server.serve_forever, name="token-issuer", daemon=True)
    thread.start()
    try:
        yield issuer
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)
