"""The web inspector, mounted at ``/inspector``: server-rendered Jinja pages (no front-end build) of the
users, one user's layers, the context preview, search, an item's history, sessions, and pending learns
with a retry button. Read-only unless the app was created with ``inspector_writes=True``; its writes are
CSRF-protected. Signed in with an API key like the rest of the server.

Two routers: ``router`` (every page; app.py attaches the key check to it) and ``public_router`` (the
sign-in page and the stylesheet, which must answer before anyone is signed in). Memory is read through
the library (``app.state.memory``), never over HTTP.
"""

from __future__ import annotations

from .pages import public_router, router

__all__ = ["public_router", "router"]
