"""Routes of one user's memory, under ``/v1/users/{user_id}``: the typed snapshot, the compiled context
(``query``, ``token_budget``, ``agent_id``), ``learn`` from messages (synchronous, or 202 and in the
background), search, patching profile and policies, knowledge and feedback items (list with filters,
add, get, update in place, delete), and the user's change history."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter()
