"""Plain Python functions as tools an agent's model can call."""

from __future__ import annotations

import asyncio
import inspect
import json
import typing
from collections.abc import Awaitable, Callable
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError, create_model

from .errors import ConfigurationError
from .extraction.bridge import run_sync
from .tools import PREFIX


async def _awaited(awaitable: Awaitable[Any]) -> Any:
    return await awaitable


class FunctionTool:
    """A plain Python function as a tool: its signature becomes the JSON Schema, its docstring the
    description; arguments are validated with pydantic before the call."""

    def __init__(self, fn: Callable[..., Any]) -> None:
        if not callable(fn) or not getattr(fn, "__name__", None) or fn.__name__ == "<lambda>":
            raise ConfigurationError(f"a tool must be a named function, got {fn!r}")
        if fn.__name__.startswith(PREFIX):
            raise ConfigurationError(
                f"tool name {fn.__name__!r}: the prefix {PREFIX!r} is reserved for memory"
            )
        hints = typing.get_type_hints(fn)
        fields: dict[str, Any] = {
            name: (hints.get(name, Any), ... if p.default is inspect.Parameter.empty else p.default)
            for name, p in inspect.signature(fn).parameters.items()
            if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
        }
        self.fn = fn
        self.name = fn.__name__
        self.args: type[BaseModel] = create_model(
            f"{fn.__name__}_arguments", __config__=ConfigDict(extra="forbid"), **fields
        )
        self.definition: dict[str, Any] = {
            "type": "function",
            "function": {
                "name": self.name,
                "description": (inspect.getdoc(fn) or self.name).split("\n\n")[0],
                "parameters": self.args.model_json_schema(),
            },
        }

    def _arguments(self, arguments: str) -> dict[str, Any]:
        return dict(self.args.model_validate_json(arguments or "{}"))

    @staticmethod
    def _text(result: Any) -> str:
        return result if isinstance(result, str) else json.dumps(result, default=str, ensure_ascii=False)

    def call(self, arguments: str) -> str:
        try:
            result = self.fn(**self._arguments(arguments))
            if inspect.isawaitable(result):  # an async tool in a sync run: on the bridge's loop
                result = run_sync(_awaited(result))
            return self._text(result)
        except ValidationError as exc:
            return f"error: invalid arguments: {exc.errors()[0]['msg']}"
        except Exception as exc:  # a tool's failure is the model's information, not the run's end
            return f"error: {type(exc).__name__}: {exc}"

    async def acall(self, arguments: str) -> str:
        if not inspect.iscoroutinefunction(self.fn):
            return await asyncio.to_thread(self.call, arguments)  # a blocking tool must not stall the loop
        try:
            result = await self.fn(**self._arguments(arguments))
            return self._text(result)
        except ValidationError as exc:
            return f"error: invalid arguments: {exc.errors()[0]['msg']}"
        except Exception as exc:
            return f"error: {type(exc).__name__}: {exc}"
