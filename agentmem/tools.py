"""Agentic memory tools: remember, update, forget, search — bound to one user (and agent, session).

``memory.tools(user_id=..., agent_id=...)`` returns the tools in OpenAI function format with a
dispatcher, for any framework. The scope is fixed when the tools are made: no argument a model sends
can reach another user's memory. Names are prefixed ``memory_`` so they do not collide with yours.
With ``agent_memory=True`` the tools also reach the agent's own memory (shared by all its users):
``memory_remember`` takes ``scope="agent"``, search shows both, update and forget act where the item is.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Any

from .errors import AgentMemError
from .extraction.wording import content_words
from .layers import Layer
from .records import Change, SearchHit
from .scope import Scope
from .writes import Writes

if TYPE_CHECKING:
    from .manager import MemoryManager

PREFIX = "memory_"
SEARCH_LIMIT = 8
FORGET_OVERLAP = 0.5  # share of the description's words a memory must contain to be forgotten by it


def _matches(wanted: set[str], have: set[str]) -> bool:
    """Most of the description's words are in the memory, and most of the memory's in the description."""
    if not wanted or not have:
        return False
    shared = len(wanted & have)
    return shared / len(wanted) >= FORGET_OVERLAP and shared / len(have) >= FORGET_OVERLAP


def _fn(name: str, description: str, properties: dict[str, Any], required: list[str]) -> dict[str, Any]:
    return {
        "type": "function",
        "function": {
            "name": PREFIX + name,
            "description": description,
            "parameters": {"type": "object", "properties": properties, "required": required},
        },
    }


def tool_definitions(layers: Mapping[str, Layer], *, agent_memory: bool = False) -> list[dict[str, Any]]:
    """The memory tools in OpenAI function format for these layers; with ``agent_memory``,
    ``memory_remember`` also takes ``scope="agent"``. Whose memory they act on is not part of them."""
    return [
        _fn(
            "remember",
            "Save something the user asked you to remember, or clearly stated about themselves. layer: "
            + ", ".join(layer.tool_hint() for layer in layers.values())
            + ". Other arguments apply to the layers named in their description.",
            {
                "layer": {"type": "string", "enum": list(layers)},
                "value": {"type": "string", "description": "the value, or the fact as one sentence"},
                **_layer_arguments(layers),
                **(_SCOPE_ARGUMENT if agent_memory else {}),
            },
            ["layer", "value"],
        ),
        _fn(
            "update",
            "Correct a stored memory in place (ids come from memory_search).",
            {
                "item_id": {"type": "string"},
                "value": {
                    "type": "string",
                    "description": "the corrected value; for a list, all of its items, comma-separated",
                },
            },
            ["item_id", "value"],
        ),
        _fn(
            "forget",
            "Forget a memory when the user asks: by id (from memory_search), or by a description of it.",
            {"item_id": {"type": "string"}, "description": {"type": "string"}},
            [],
        ),
        _fn(
            "search",
            "Search what you remember about the user; returns ids for update and forget.",
            {"query": {"type": "string"}, **_topics_argument(layers)},
            ["query"],
        ),
    ]


def _topics_argument(layers: Mapping[str, Layer]) -> dict[str, Any]:
    """``memory_search``'s ``topics``, where some layer's items list topics (``search(topics=)``)."""
    with_topics = [name for name, layer in layers.items() if "topics" in layer.schema.fields]
    if not with_topics:
        return {}
    return {
        "topics": {
            "type": "array",
            "items": {"type": "string"},
            "description": f"only {', '.join(with_topics)} memories listing one of these topics",
        }
    }


@dataclass
class MemoryTools:
    """Memory tools for one scope: ``definitions`` for the model, ``dispatch`` to run a call.

    ``changes`` collects every change the tools made, in order.
    """

    manager: MemoryManager
    writes: Writes
    scope: Scope
    session_id: str | None = None
    changes: list[Change] = field(default_factory=list)
    generation: str | None = None
    """The user's generation the tools were given (``MemoryManager.generation``): writes fail once
    the user is deleted."""
    agent_scope: Scope | None = None
    """The agent's own memory, when the tools may write to it too (``tools(agent_memory=True)``)."""
    session_scoped: bool | None = None
    """Whether ``memory_remember`` stores into the session (``None``: as each layer is configured)."""

    @cached_property
    def names(self) -> frozenset[str]:
        return frozenset(d["function"]["name"] for d in self.definitions)

    @cached_property
    def definitions(self) -> list[dict[str, Any]]:
        """The tools in OpenAI function format (built once: the layers never change)."""
        return tool_definitions(self.manager.layers, agent_memory=self.agent_scope is not None)

    def dispatch(self, name: str, arguments: str | Mapping[str, Any]) -> str:
        """Run one tool call; returns the JSON text to send back to the model. Never raises for bad
        arguments: the error goes back to the model as the result."""
        try:
            # Only the defined tools: a name like "memory_write" must never reach an internal method.
            parameters = {d["function"]["name"]: d["function"]["parameters"] for d in self.definitions}
            if name not in parameters:
                raise ValueError(f"unknown memory tool {name!r}")
            args = json.loads(arguments) if isinstance(arguments, str) else dict(arguments)
            if not isinstance(args, dict):
                raise TypeError("arguments must be a JSON object")
            unknown = sorted(set(args) - set(parameters[name]["properties"]))
            if unknown:
                raise TypeError(f"{name} takes no argument(s) {', '.join(map(repr, unknown))}")
            missing = [p for p in parameters[name]["required"] if args.get(p) is None]
            if missing:
                raise TypeError(f"{name} needs {', '.join(map(repr, missing))}")
            properties = parameters[name]["properties"]
            for key, value in args.items():  # a model may send anything
                if (
                    value is not None
                    and properties[key].get("type") == "string"
                    and not isinstance(value, str)
                ):
                    raise TypeError(f"{key} must be a string, not {type(value).__name__}")
            handler = getattr(self, "_" + name.removeprefix(PREFIX))
            result: dict[str, Any] = handler(**args)
        except (AgentMemError, TypeError, ValueError) as exc:
            result = {"ok": False, "error": str(exc)}
        return json.dumps(result, ensure_ascii=False)

    # ---- the tools ------------------------------------------------------------------------

    def _record(self, changes: list[Change]) -> dict[str, Any]:
        self.changes.extend(changes)
        return {"ok": True, "changes": [{"op": c.op, "id": c.item_id} for c in changes] or "already known"}

    def _remember(self, layer: str, value: str, scope: str | None = None, **arguments: Any) -> dict[str, Any]:
        if not value or not value.strip():
            raise ValueError("value must not be empty")
        target = self.manager.layers.get(layer)
        if target is None:
            raise ValueError(f"unknown layer {layer!r}; layers are {', '.join(self.manager.layers)}")
        if scope not in (None, "user", "agent"):
            raise ValueError(f"scope must be 'user' or 'agent', not {scope!r}")
        if scope == "agent" and self.agent_scope is not None:
            # The agent's own memory holds nothing of this user: not even the session it came from.
            patch = target.remembered(value.strip(), arguments, None)
            changes = self.writes.apply(self.agent_scope, [(layer, patch)], source="agentic", session_id=None)
            return self._record(changes)
        patch = target.remembered(value.strip(), arguments, self.session_id)
        where = target.write_scope(self.scope.user_wide(), self.session_id, self.session_scoped)
        return self._record(
            self.writes.apply(
                where,
                [(layer, patch)],
                source="agentic",
                session_id=self.session_id,
                generation=self.generation,
            )
        )

    def _owner(self, item_id: str) -> Scope:
        """The scope an item id is in: this scope's, else the agent's own memory (when the tools reach
        it and hold it there); an unknown id stays this scope's, whose NotFoundError says so."""
        if self.agent_scope is not None and self.manager.history(
            agent_id=self.agent_scope.agent_id, item_id=item_id
        ):
            return self.agent_scope
        return self.scope

    def _update(self, item_id: str, value: str) -> dict[str, Any]:
        if not value or not value.strip():
            raise ValueError("value must not be empty")
        # In place (the id stays), where the item lives (shared, this agent's, or the agent's own memory).
        owner = self._owner(item_id)
        return self._record(
            self.writes.update(
                owner,
                item_id,
                value.strip(),
                {},
                source="agentic",
                session_id=self.session_id if owner is self.scope else None,
                generation=self.generation if owner is self.scope else None,
            )
        )

    def _forget(self, item_id: str | None = None, description: str | None = None) -> dict[str, Any]:
        if item_id:
            owner = self._owner(item_id)
            mine = owner is self.scope
            forgotten = self.writes.forget(
                owner,
                item_id,
                source="agentic",
                session_id=self.session_id if mine else None,
                generation=self.generation if mine else None,
            )
            self.changes.append(forgotten)
            return {"ok": True, "forgotten": item_id}
        if not description or not description.strip():
            raise ValueError("give item_id or description")
        # Forget only what clearly matches, and only when exactly one memory does: guessing between
        # several, or settling for a loose match, would delete the wrong memory.
        wanted = content_words(description)
        matches = [
            hit.item for hit in self._hits(description) if _matches(wanted, content_words(hit.item.text))
        ]
        if len(matches) == 1:
            return self._forget(item_id=matches[0].id)
        if matches:
            return {
                "ok": False,
                "error": "several memories match; forget the right one by id",
                "candidates": [{"id": m.id, "layer": m.layer, "text": m.text} for m in matches],
            }
        return {"ok": False, "error": "no memory clearly matches; use memory_search and forget by id"}

    def _search(self, query: str, topics: list[str] | None = None) -> dict[str, Any]:
        hits = self._hits(query, limit=SEARCH_LIMIT, topics=topics)
        results = [{"id": h.item.id, "layer": h.item.layer, "text": h.item.text} for h in hits]
        if self.agent_scope is not None:
            for result, hit in zip(results, hits, strict=True):
                result["scope"] = "agent" if hit.item.user_id == self.agent_scope.user_id else "user"
        return {"ok": True, "results": results}

    def _hits(self, query: str, limit: int = 10, topics: list[str] | None = None) -> list[SearchHit]:
        scopes = [self.scope] if self.agent_scope is None else [self.scope, self.agent_scope]
        hits = [
            hit
            for scope in scopes
            for hit in self.manager.search(
                query,
                user_id=None if scope.kind == "agent" else scope.user_id,
                agent_id=scope.agent_id,
                session_id=scope.session_id,
                limit=limit,
                topics=topics,
            )
        ]
        # One index scores both scopes alike; on a tie the user's own memory comes first (stable sort).
        return sorted(hits, key=lambda hit: -hit.score)[:limit]


_SCOPE_ARGUMENT = {
    "scope": {
        "type": "string",
        "enum": ["user", "agent"],
        "description": "user (default): about this user. agent: a lesson for all your users, with "
        "nothing about this user in it",
    }
}


def _layer_arguments(layers: Mapping[str, Layer]) -> dict[str, Any]:
    """The layers' own ``memory_remember`` arguments; one argument several layers share is described
    once, naming them (and accepts any JSON value when their schemas differ)."""
    merged: dict[str, dict[str, Any]] = {}
    owners: dict[str, list[str]] = {}
    for layer in layers.values():
        for name, spec in layer.tool_arguments().items():
            if name in ("layer", "value"):
                continue
            owners.setdefault(name, []).append(layer.name)
            if name not in merged:
                merged[name] = dict(spec)
            elif {k: v for k, v in merged[name].items() if k != "description"} != {
                k: v for k, v in spec.items() if k != "description"
            }:
                merged[name] = {"description": merged[name].get("description", "")}
    return {
        name: {**spec, "description": f"({', '.join(owners[name])}) {spec.get('description', '')}".strip()}
        for name, spec in merged.items()
    }
