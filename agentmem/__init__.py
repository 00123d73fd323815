"""agentmem: long-term, layered memory of users for LLM agents.

from agentmem import MemoryManager
mem = MemoryManager()                                  # embedded SQLite file
mem.profile.update(user_id="sarah", name="Sarah", role="data scientist")
xml = mem.compile(user_id="sarah", query="data cleaning", token_budget=800)
"""

from .config import LayerConfig
from .errors import (
    AgentMemError,
    ConfigurationError,
    ConflictError,
    ExtractionError,
    InvalidInputError,
    NotFoundError,
    ScopeError,
    SecretError,
    StoreError,
)
from .layers import Fact, FeedbackEntry, Policies, Profile
from .manager import MemoryManager
from .records import Change, MemoryEvent, MemoryItem, MemoryState, SearchHit

__version__ = "0.1.0"

__all__ = [
    "AgentMemError",
    "Change",
    "ConfigurationError",
    "ConflictError",
    "ExtractionError",
    "Fact",
    "FeedbackEntry",
    "InvalidInputError",
    "LayerConfig",
    "MemoryEvent",
    "MemoryItem",
    "MemoryManager",
    "MemoryState",
    "NotFoundError",
    "Policies",
    "Profile",
    "ScopeError",
    "SearchHit",
    "SecretError",
    "StoreError",
    "__version__",
]
