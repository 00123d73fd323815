"""Test doubles for your own tests: a scripted model that needs no network and no key.

from agentmem import MemoryManager
from agentmem.testing import ScriptedModel

model = ScriptedModel([{"profile": {"name": "Sarah"}}])
mem = MemoryManager(db="sqlite://", model=model)
mem.learn([{"role": "user", "content": "I'm Sarah"}], user_id="sarah")
assert model.requests[0].messages[0]["role"] == "system"

To exercise the real HTTP path (litellm, the OpenAI client, retries on HTTP errors), run a
:class:`LoopbackServer` on 127.0.0.1 and point ``model_options["api_base"]`` at it:

with LoopbackServer([{"profile": {"name": "Sarah"}}]) as server:
    mem = MemoryManager(
        db="sqlite://", model="openai/test-model",
        model_options={"api_base": server.url, "api_key": "test-key"},
    )
    mem.learn([{"role": "user", "content": "I'm Sarah"}], user_id="sarah")
assert server.requests[0]["model"] == "test-model"

For embeddings, :class:`HashingEmbedder` is a deterministic offline embedding function (a test double:
shared words and word parts make texts similar, nothing semantic), ``embedding_model=HashingEmbedder()``;
``LoopbackServer`` answers ``POST /v1/embeddings`` with it, for ``embedding_model="openai/any-name"``
with the same ``embedding_options={"api_base": server.url, "api_key": "test-key"}``.

For expiry and retention, a :class:`ManualClock` stands still until your test moves it:
``MemoryManager(db="sqlite://", clock=clock)``, then ``clock.advance(timedelta(days=31))``.
"""

from .clock import ManualClock
from .embedder import HashingEmbedder
from .scripted import ScriptedModel, ScriptedRequest, ToolCall
from .server import Fault, LoopbackServer, ServerReply, Slow

__all__ = [
    "Fault",
    "HashingEmbedder",
    "LoopbackServer",
    "ManualClock",
    "ScriptedModel",
    "ScriptedRequest",
    "ServerReply",
    "Slow",
    "ToolCall",
]
