"""Agent runs per request: ``POST /v1/agents/{agent_id}/runs`` with ``message``, ``user_id``,
``session_id`` and ``stream``; the reply and the session id (server-sent events when streaming). The
agents are those ``create_app`` was given (``agentmem serve --agents module:attr``)."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter()
