"""agentmem's REST server (``pip install 'agentmem-layers[server]'``; ``agentmem serve``).

``create_app`` imports FastAPI, so it is loaded on first use: ``agentmem.server.keys`` and
``agentmem.server.agents`` (what ``agentmem keys`` uses) work without the extra installed.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .app import create_app

__all__ = ["create_app"]


def __getattr__(name: str) -> Any:
    if name == "create_app":
        from .app import create_app

        return create_app
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
