"""Loading the agents a server runs (``agentmem serve --agents module:attr``).

The attribute is a list (or tuple) of :class:`~agentmem.Agent`, a mapping of agent id to Agent, or a
callable taking the served :class:`~agentmem.MemoryManager` and returning either (so the agents can
share the server's memory). Every agent needs an ``agent_id``: it is the ``{agent_id}`` of its route.
Nothing here imports FastAPI.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from typing import Any

from ..agent import Agent
from ..errors import ConfigurationError
from ..manager import MemoryManager


def load_agents(spec: str, memory: MemoryManager) -> dict[str, Agent]:
    """The agents named by ``spec`` (``"package.module:attribute"``), by agent id.

    Raises:
        ConfigurationError: a malformed spec, a module or attribute that does not exist, something that
            is not agents, an agent without ``agent_id``, or two agents with one id.
    """
    module_name, sep, attr = spec.partition(":")
    if not sep or not module_name or not attr:
        raise ConfigurationError(
            f"--agents must be 'module:attribute', e.g. 'myapp.agents:agents'; got {spec!r}"
        )
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ConfigurationError(f"cannot import {module_name!r} for --agents: {exc}") from exc
    found: Any = module
    for part in attr.split("."):
        if not hasattr(found, part):
            raise ConfigurationError(f"{module_name!r} has no attribute {attr!r}")
        found = getattr(found, part)
    if callable(found) and not isinstance(found, Agent):
        found = found(memory)
    if isinstance(found, Agent):
        found = [found]
    if isinstance(found, Mapping):
        agents = list(found.values())
        named = dict(found)
    elif isinstance(found, list | tuple):
        agents = list(found)
        named = None
    else:
        raise ConfigurationError(
            f"{spec} is of type {type(found).__name__}; give a list or dict of Agent, "
            "or a function of the memory returning one"
        )
    result: dict[str, Agent] = {}
    for agent in agents:
        if not isinstance(agent, Agent):
            raise ConfigurationError(f"{spec} holds a {type(agent).__name__}, not an agentmem Agent")
        if agent.agent_id is None:
            raise ConfigurationError(f"{spec}: every served agent needs an agent_id ({agent!r} has none)")
        if agent.agent_id in result:
            raise ConfigurationError(f"{spec}: two agents have the agent_id {agent.agent_id!r}")
        result[agent.agent_id] = agent
    if named is not None:
        wrong = [key for key, agent in named.items() if key != agent.agent_id]
        if wrong:
            raise ConfigurationError(f"{spec}: the keys {wrong} are not their agents' agent_id")
    return result
