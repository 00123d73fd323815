"""What routes take from the app: the memory, the agents and the settings ``create_app`` was given.

Use the ``Annotated`` aliases as parameter types: ``def route(memory: Memory, agents: Agents)``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request

from ..agent import Agent
from ..manager import MemoryManager
from .keys import ApiKeys


@dataclass(frozen=True)
class Settings:
    """How the app was created (``app.state.settings``)."""

    inspector_writes: bool
    """The inspector may change memory (its forms are CSRF-protected); else it is read-only."""
    max_body_bytes: int
    """The largest request body accepted; larger is 413."""


def get_memory(request: Request) -> MemoryManager:
    memory: MemoryManager = request.app.state.memory
    return memory


def get_agents(request: Request) -> Mapping[str, Agent]:
    agents: Mapping[str, Agent] = request.app.state.agents
    return agents


def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def get_keys(request: Request) -> ApiKeys:
    keys: ApiKeys = request.app.state.keys
    return keys


Memory = Annotated[MemoryManager, Depends(get_memory)]
Agents = Annotated[Mapping[str, Agent], Depends(get_agents)]
ServerSettings = Annotated[Settings, Depends(get_settings)]
Keys = Annotated[ApiKeys, Depends(get_keys)]
