"""The web inspector, mounted at ``/inspector``: server-rendered Jinja pages (no front-end build) of the
users, one user's layers, the context preview, search, an item's history, sessions, and pending learns
with a retry button. Read-only unless the app was created with ``inspector_writes=True``; its writes are
CSRF-protected. Signed in with an API key like the rest of the server."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter()
