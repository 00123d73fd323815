"""CSRF tokens of the inspector's forms, kept nowhere: a token is an HMAC, under a secret the app draws
at its first use, of the credential the browser signed in with (its key cookie, or the key id of a key
sent in a header; ``open`` in open mode). A page elsewhere can neither read it (same-origin policy) nor
compute it, and the key cookie is SameSite=Strict besides; signing in anew changes nothing the token
depends on but the key, so a token dies with its key.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

from fastapi import Request

from ..auth import INSPECTOR_COOKIE, Principal

FIELD = "csrf"
"""The hidden form field that carries the token."""


def _secret(request: Request) -> bytes:
    state = request.app.state
    secret: bytes | None = getattr(state, "inspector_csrf_secret", None)
    if secret is None:
        # Drawn once per app (a restart invalidates open forms: they are re-rendered on the next load).
        secret = state.inspector_csrf_secret = secrets.token_bytes(32)
    return secret


def token(request: Request, who: Principal) -> str:
    """The token this browser's forms carry."""
    cookie = request.cookies.get(INSPECTOR_COOKIE)
    credential = (
        "cookie:" + hashlib.sha256(cookie.encode()).hexdigest() if cookie else f"key:{who.key_id or 'open'}"
    )
    return hmac.new(_secret(request), credential.encode(), hashlib.sha256).hexdigest()


def valid(request: Request, who: Principal, given: str | None) -> bool:
    return given is not None and hmac.compare_digest(given.encode(), token(request, who).encode())
