"""agentmem: long-term, layered memory of users for LLM agents.

from agentmem import MemoryManager
mem = MemoryManager()                                  # embedded SQLite file
mem.profile.update(user_id="sarah", name="Sarah", role="data scientist")
xml = mem.compile(user_id="sarah", query="data cleaning", token_budget=800)
"""

import logging

from .agent import Agent, RunEvent, RunFinished, RunResult, RunStarted, TextDelta
from .config import LayerConfig
from .errors import (
    AgentMemError,
    AuthenticationError,
    ClosedError,
    ConfigurationError,
    ConflictError,
    ContextLengthError,
    EmbeddingError,
    ErasedError,
    ExtractionError,
    InvalidInputError,
    ModelError,
    ModelNotFoundError,
    NotFoundError,
    RateLimitError,
    ScopeError,
    SecretError,
    StoreError,
    TransientModelError,
    UnsupportedError,
)
from .extraction.model import (
    LiteLLMModel,
    Message,
    Model,
    ModelRequest,
    ModelResponse,
    StreamingModel,
    ToolRequest,
)
from .extraction.retry import RetryPolicy
from .layers import Fact, FeedbackEntry, Policies, Profile
from .manager import MemoryManager
from .records import (
    Backup,
    Change,
    Cost,
    LearnResult,
    MemoryEvent,
    MemoryItem,
    MemoryState,
    PendingLearn,
    RetryReport,
    SearchHit,
    Usage,
    UserSummary,
)
from .store.retention import CleanupKind, CleanupReport
from .store.sessions import SessionInfo
from .store.variables import Variable
from .templates import MemoryTemplate
from .tools import MemoryTools

__version__ = "0.1.0"

# agentmem logs under "agentmem" and prints nothing; without a logging configuration, nothing is shown.
logging.getLogger(__name__).addHandler(logging.NullHandler())

__all__ = [
    "Agent",
    "AgentMemError",
    "AuthenticationError",
    "Backup",
    "Change",
    "CleanupKind",
    "CleanupReport",
    "ClosedError",
    "ConfigurationError",
    "ConflictError",
    "ContextLengthError",
    "Cost",
    "EmbeddingError",
    "ErasedError",
    "ExtractionError",
    "Fact",
    "FeedbackEntry",
    "InvalidInputError",
    "LayerConfig",
    "LearnResult",
    "LiteLLMModel",
    "MemoryEvent",
    "MemoryItem",
    "MemoryManager",
    "MemoryState",
    "MemoryTemplate",
    "MemoryTools",
    "Message",
    "Model",
    "ModelError",
    "ModelNotFoundError",
    "ModelRequest",
    "ModelResponse",
    "NotFoundError",
    "PendingLearn",
    "Policies",
    "Profile",
    "RateLimitError",
    "RetryPolicy",
    "RetryReport",
    "RunEvent",
    "RunFinished",
    "RunResult",
    "RunStarted",
    "ScopeError",
    "SearchHit",
    "SecretError",
    "SessionInfo",
    "StoreError",
    "StreamingModel",
    "TextDelta",
    "ToolRequest",
    "TransientModelError",
    "UnsupportedError",
    "Usage",
    "UserSummary",
    "Variable",
    "__version__",
]
