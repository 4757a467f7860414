"""A local authorization server for the OAuth tests: metadata and a JWKS on loopback, and tokens minted
with PyJWT and `cryptography` (good ones and every kind of bad one)."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey


def new_key() -> RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def public_jwk(key: RSAPrivateKey, kid: str) -> dict[str, Any]:
    jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key()))
    return {**jwk, "kid": kid, "use": "sig", "alg": "RS256"}


def public_pem(key: RSAPrivateKey) -> bytes:
    return key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


class Issuer:
    """An issuer at `url`: `/.well-known/openid-configuration` and `/jwks`, keys replaceable at will."""

    def __init__(self) -> None:
        self.key = new_key()
        self.kid = "key-1"
        self.published: dict[str, RSAPrivateKey] = {self.kid: self.key}
        self.jwks_fetches = 0
        self.introspected: dict[str, dict[str, Any]] = {}
        issuer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def _json(self, body: Any, status: int = 200) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:
                if self.path == "/.well-known/openid-configuration":
                    self._json(issuer.metadata())
                elif self.path == "/jwks":
                    issuer.jwks_fetches += 1
                    keys = [public_jwk(k, kid) for kid, k in issuer.published.items()]
                    self._json({"keys": keys})
                else:
                    self._json({"error": "not found"}, 404)

            def do_POST(self) -> None:
                if self.path != "/introspect":
                    self._json({"error": "not found"}, 404)
                    return
                length = int(self.headers.get("content-length", "0"))
                form = dict(p.split("=", 1) for p in self.rfile.read(length).decode().split("&") if "=" in p)
                self._json(issuer.introspected.get(form.get("token", ""), {"active": False}))

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def metadata(self) -> dict[str, Any]:
        return {
            "issuer": self.url,
            "authorization_endpoint": f"{self.url}/auth",
            "token_endpoint": f"{self.url}/token",
            "jwks_uri": f"{self.url}/jwks",
            "introspection_endpoint": f"{self.url}/introspect",
            "response_types_supported": ["code"],
        }

    def rotate(self) -> None:
        """A new signing key under a new kid (the old one still published)."""
        self.key = new_key()
        self.kid = f"key-{len(self.published) + 1}"
        self.published[self.kid] = self.key

    def token(
        self,
        audience: str,
        *,
        scope: str = "gpu.read",
        email: str | None = "reader@example.com",
        lifetime: float = 300,
        not_before: float | None = None,
        issuer: str | None = None,
        key: RSAPrivateKey | None = None,
        kid: str | None = None,
        **claims: Any,
    ) -> str:
        now = time.time()
        body: dict[str, Any] = {
            "iss": issuer or self.url,
            "sub": "user-1",
            "aud": audience,
            "iat": int(now),
            "exp": int(now + lifetime),
            "scope": scope,
            "client_id": "test-client",
            **claims,
        }
        if email is not None:
            body["email"] = email
        if not_before is not None:
            body["nbf"] = int(not_before)
        return jwt.encode(body, key or self.key, algorithm="RS256", headers={"kid": kid or self.kid})


@contextmanager
def running_issuer() -> Iterator[Issuer]:
    issuer = Issuer()
    issuer.thread.start()
    try:
        yield issuer
    finally:
        issuer.server.shutdown()
        issuer.server.server_close()
