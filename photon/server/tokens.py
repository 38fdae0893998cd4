"""API tokens: signed with `admin.secret`, valid for `admin.token.ttl` seconds.

A token is a JSON Web Token (HS256) so any JWT library can read it; it is made and checked
here with the standard library to keep the server free of a dependency for ten lines of HMAC.
Checked tokens are remembered until they expire, so the hot path costs one dict lookup.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from collections.abc import Mapping
from typing import Any

import orjson

_HEADER = base64.urlsafe_b64encode(b'{"alg":"HS256","typ":"JWT"}').rstrip(b"=")
_CACHE_LIMIT = 10_000


def _b64(data: bytes) -> bytes:
    return base64.urlsafe_b64encode(data).rstrip(b"=")


def _unb64(data: bytes) -> bytes:
    return base64.urlsafe_b64decode(data + b"=" * (-len(data) % 4))


class TokenSigner:
    """Issues and verifies the admin's API tokens."""

    def __init__(self, secret: str, ttl_seconds: int, user: str = "admin") -> None:
        if not secret:
            raise ValueError("admin.secret must not be empty")
        self._key = secret.encode()
        self.ttl = ttl_seconds
        self.user = user
        self._checked: dict[str, float] = {}

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> TokenSigner:
        return cls(str(config["admin.secret"]), int(config["admin.token.ttl"]), str(config["admin.user"]))

    def _sign(self, signing_input: bytes) -> bytes:
        return _b64(hmac.new(self._key, signing_input, hashlib.sha256).digest())

    def issue(self, now: float | None = None) -> str:
        issued = int(time.time() if now is None else now)
        claims = _b64(orjson.dumps({"sub": self.user, "iat": issued, "exp": issued + self.ttl}))
        signing_input = _HEADER + b"." + claims
        return (signing_input + b"." + self._sign(signing_input)).decode()

    def check_credentials(self, user: str, password: str, expected_password: str) -> bool:
        """Constant-time comparison of both the user name and the password."""
        same_user = hmac.compare_digest(user.encode(), self.user.encode())
        same_pass = hmac.compare_digest(password.encode(), expected_password.encode())
        return same_user and same_pass

    def verify(self, token: str | None) -> bool:
        """True for a token this server signed that has not expired."""
        if not token:
            return False
        now = time.time()
        expires = self._checked.get(token)
        if expires is not None:
            if now < expires:
                return True
            del self._checked[token]
            return False
        try:
            signing_input, _, signature = token.encode().rpartition(b".")
            if not hmac.compare_digest(signature, self._sign(signing_input)):
                return False
            claims = orjson.loads(_unb64(signing_input.split(b".", 1)[1]))
            expires = float(claims["exp"])
        except (ValueError, KeyError, IndexError, TypeError, orjson.JSONDecodeError):
            return False
        if now >= expires:
            return False
        if len(self._checked) >= _CACHE_LIMIT:
            self._checked.clear()
        self._checked[token] = expires
        return True
