"""Adapters that plug agentmem into agent frameworks, one module per framework.

Each module imports its framework, so none of them is imported by ``import agentmem``; install the
framework with its extra (``pip install "agentmem-layers[pydantic-ai]"``) and import the module:

- ``agentmem.integrations.pydantic_ai``: pydantic-ai agents
- ``agentmem.integrations.openai_agents``: the OpenAI Agents SDK
- ``agentmem.integrations.langgraph``: LangGraph and LangChain agents

The MCP server lives in ``agentmem.mcp`` (``agentmem mcp``, and ``/mcp`` on ``agentmem serve``).
"""
