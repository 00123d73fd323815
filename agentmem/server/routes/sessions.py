"""Routes of a user's conversation sessions, under ``/v1/users/{user_id}/sessions``: list, messages
(read, append) and the session's summary."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter()
